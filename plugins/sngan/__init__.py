"""sngan: spectral normalisation on every layer of D with the hinge loss (Miyato et al., 2018), DCGAN-shaped."""

from pathlib import Path

from ganzoo_plugins.dcgan import dcgan_options, variant

SNGANOptions = dcgan_options("SNGANOptions", dropout=0.0)

register_models = variant(
    "sngan", spectral_norm=True, options=SNGANOptions, folder=Path(__file__).parent,
    description="spectrally normalised D, trained with the hinge loss (Miyato et al. 2018)",
)
