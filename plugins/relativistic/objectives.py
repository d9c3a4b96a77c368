"""The relativistic losses on logits C(x), with -log sigmoid(a) = softplus(-a) and
-log(1 - sigmoid(a)) = softplus(a). Equation numbers are those of Jolicoeur-Martineau (2018)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ganzoo.interfaces import Loss


class _Relativistic(Loss):
    generator_sees_real = True
    cuda_graphs = True

    def _needs(self, real_logits: torch.Tensor | None) -> torch.Tensor:
        if real_logits is None:
            raise ValueError(f"{type(self).__name__}.generator_loss needs D's logits on real images")
        return real_logits


class RelativisticStandard(_Relativistic):
    """RSGAN, eqs. (7)-(8): L_D = -E[log sigmoid(C(x_r) - C(x_f))], L_G = -E[log sigmoid(C(x_f) - C(x_r))],
    over pairs of a real and a fake image (the i-th of each batch)."""

    def discriminator_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return F.softplus(-(real_logits - fake_logits)).mean()

    def generator_loss(self, fake_logits: torch.Tensor, real_logits: torch.Tensor | None = None) -> torch.Tensor:
        return F.softplus(-(fake_logits - self._needs(real_logits))).mean()


class RelativisticAverage(_Relativistic):
    """RaSGAN, eqs. (11)-(12) with the standard loss:
    L_D = -E_r[log sigmoid(C(x_r) - E_f C(x_f))] - E_f[log(1 - sigmoid(C(x_f) - E_r C(x_r)))],
    L_G = -E_f[log sigmoid(C(x_f) - E_r C(x_r))] - E_r[log(1 - sigmoid(C(x_r) - E_f C(x_f)))]."""

    def discriminator_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return (F.softplus(-(real_logits - fake_logits.mean())).mean()
                + F.softplus(fake_logits - real_logits.mean()).mean())

    def generator_loss(self, fake_logits: torch.Tensor, real_logits: torch.Tensor | None = None) -> torch.Tensor:
        real_logits = self._needs(real_logits)
        return (F.softplus(-(fake_logits - real_logits.mean())).mean()
                + F.softplus(real_logits - fake_logits.mean()).mean())
