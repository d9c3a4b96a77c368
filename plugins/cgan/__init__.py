"""cgan: the conditional GAN of Mirza and Osindero (2014) on the DCGAN builder.

G receives z and a learned embedding of the class label; D receives the image plus a learned
per-class map as an extra channel. Sample one class with ``ganzoo sample RUN --class sneaker``.
"""

from pathlib import Path

from ganzoo_plugins.dcgan import variant

register_models = variant(
    "cgan", conditional=True, folder=Path(__file__).parent,
    description="conditional DCGAN: the class label is fed to G and D (Mirza & Osindero 2014)",
)
