"""PyTorch twins of jaxfp's networks and train steps, for `versus_pytorch.py` only (the package
never imports torch). Each twin has the same layers, shapes, loss and optimiser as the jaxfp step
it is timed against; `CASES[name](threads)` returns (one train step, samples per step).

Over ~400 lines: one PyTorch twin per benchmarked network, side by side so that each can be checked
against its JAX network.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

Step = Callable[[], None]


def conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> list[nn.Module]:
    # momentum 0.1 is Flax's 0.9 (the weight of the old running value there, of the new one here)
    return [
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout, momentum=0.1),
    ]


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, features: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *conv_bn(cin, features, 3, stride), nn.ReLU(), *conv_bn(features, features, 3)
        )
        change = stride != 1 or cin != features
        self.proj = nn.Sequential(*conv_bn(cin, features, 1, stride)) if change else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.proj(x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, features: int, stride: int) -> None:
        super().__init__()
        out = features * 4
        self.body = nn.Sequential(
            *conv_bn(cin, features, 1),
            nn.ReLU(),
            *conv_bn(features, features, 3, stride),
            nn.ReLU(),
            *conv_bn(features, out, 1),
        )
        change = stride != 1 or cin != out
        self.proj = nn.Sequential(*conv_bn(cin, out, 1, stride)) if change else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.proj(x))


def resnet(stages: tuple[int, ...], block: type[nn.Module], channels: int = 4) -> nn.Module:
    layers: list[nn.Module] = [
        nn.Conv2d(channels, 64, 7, 2, 3, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.MaxPool2d(3, 2, 1),
    ]
    cin = 64
    for stage, blocks in enumerate(stages):
        for b in range(blocks):
            features = 64 * 2**stage
            layers.append(block(cin, features, 2 if stage > 0 and b == 0 else 1))
            cin = features * block.expansion
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 2))


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, features: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = cin * expansion
        layers = [*conv_bn(cin, hidden, 1), nn.ReLU6()] if expansion != 1 else []
        layers += [*conv_bn(hidden, hidden, 3, stride, hidden), nn.ReLU6()]
        self.body = nn.Sequential(*layers, *conv_bn(hidden, features, 1))
        self.skip = stride == 1 and cin == features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) if self.skip else self.body(x)


def mobilenet_v2(channels: int = 4) -> nn.Module:
    from jaxfp.nets.mobile import MOBILENET_V2_SETTINGS

    layers: list[nn.Module] = [*conv_bn(channels, 32, 3, 2), nn.ReLU6()]
    cin = 32
    for t, c, n, s in MOBILENET_V2_SETTINGS:
        for i in range(n):
            layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
            cin = c
    layers += [*conv_bn(cin, 1280, 1), nn.ReLU6(), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers, nn.Dropout(0.2), nn.Linear(1280, 2))


class ShuffleUnit(nn.Module):
    def __init__(self, cin: int, features: int, stride: int) -> None:
        super().__init__()
        branch = features // 2
        self.stride = stride
        if stride == 2:
            self.keep = nn.Sequential(
                *conv_bn(cin, cin, 3, 2, cin), *conv_bn(cin, branch, 1), nn.ReLU()
            )
            cin_main = cin
        else:
            cin_main = branch
        self.main = nn.Sequential(
            *conv_bn(cin_main, branch, 1),
            nn.ReLU(),
            *conv_bn(branch, branch, 3, stride, branch),
            *conv_bn(branch, branch, 1),
            nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            keep, x = x.chunk(2, dim=1)
        else:
            keep = self.keep(x)
        y = torch.cat([keep, self.main(x)], 1)
        b, c, h, w = y.shape
        return y.view(b, 2, c // 2, h, w).transpose(1, 2).reshape(b, c, h, w)


def shufflenet_v2(channels: int = 4) -> nn.Module:
    layers: list[nn.Module] = [*conv_bn(channels, 24, 3, 2), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
    cin = 24
    for repeats, features in zip((4, 8, 4), (116, 232, 464), strict=True):
        for i in range(repeats):
            layers.append(ShuffleUnit(cin, features, 2 if i == 0 else 1))
            cin = features
    layers += [*conv_bn(cin, 1024, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers, nn.Linear(1024, 2))


BACKBONES = {
    "resnet18": lambda: resnet((2, 2, 2, 2), BasicBlock),
    "resnet34": lambda: resnet((3, 4, 6, 3), BasicBlock),
    "resnet50": lambda: resnet((3, 4, 6, 3), Bottleneck),
    "mobilenet_v2": mobilenet_v2,
    "shufflenet_v2": shufflenet_v2,
}


def supervised_step(model: nn.Module, x: torch.Tensor, loss: Callable, lr: float = 1e-3) -> Step:
    opt = torch.optim.Adam(model.parameters(), lr)
    model.train()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss(model(x)).backward()
        opt.step()

    return step


def backbone_case(name: str, batch: int, shape: tuple[int, ...]) -> tuple[Step, int]:
    x, y = torch.randn(batch, *shape), torch.zeros(batch, 2)
    return supervised_step(BACKBONES[name](), x, lambda out: F.mse_loss(out, y)), batch


def mlp(width: int = 520, hidden: int = 256) -> nn.Module:
    return nn.Sequential(
        nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(256, 2)
    )


def ensemble_one_by_one(members: int, batch: int = 64) -> tuple[Step, int]:
    x, y = torch.randn(batch, 520), torch.zeros(batch, 2)
    steps = [supervised_step(mlp(), x, lambda out: F.mse_loss(out, y)) for _ in range(members)]

    def step() -> None:
        for s in steps:
            s()

    return step, batch * members


def ensemble_torch_func(members: int, batch: int = 64) -> tuple[Step, int]:
    """All members as one vmapped program (`torch.func`), Adam on the stacked parameters."""
    from torch.func import functional_call, stack_module_state, vmap

    models = [mlp() for _ in range(members)]
    params, buffers = stack_module_state(models)
    base = mlp().to("meta")
    x, y = torch.randn(batch, 520), torch.zeros(batch, 2)
    opt = torch.optim.Adam(params.values(), 1e-3)

    def member_loss(p: dict, b: dict) -> torch.Tensor:
        return F.mse_loss(functional_call(base, (p, b), (x,)), y)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        vmap(member_loss)(params, buffers).sum().backward()
        opt.step()

    return step, batch * members


class Positioner(nn.Module):
    """FPN's positioner (`jaxfp.methods.fpn.nets.Positioner`); `use_map=False`: the plain LSTM."""

    def __init__(self, points: int, aps: int, use_map: bool, features: int = 128) -> None:
        super().__init__()
        self.use_map = use_map
        if use_map:
            self.encoder = nn.Sequential(
                nn.Linear(aps, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, aps)
            )
            nn.init.zeros_(self.encoder[-1].weight)
            self.log_tau = nn.Parameter(torch.tensor(-6.9078))
            self.norm = nn.LayerNorm(points)
            self.skip = nn.Parameter(torch.tensor(1.0))
        self.lstm = nn.LSTM(points if use_map else aps, features, 2, batch_first=True)
        self.out = nn.Linear(features, points)

    def forward(self, signals: torch.Tensor, radio_map: torch.Tensor) -> torch.Tensor:
        if not self.use_map:
            return self.out(self.lstm(signals)[0])
        encoded = radio_map + self.encoder(radio_map)
        distance = torch.cdist(signals, encoded.expand(signals.shape[0], -1, -1)) ** 2
        match = F.log_softmax(-distance / signals.shape[-1] / self.log_tau.exp(), -1)
        h = self.lstm(self.norm(match))[0]
        return self.out(h) + self.skip * match


def fpn_case(use_map: bool, points: int, aps: int, batch: int, length: int) -> tuple[Step, int]:
    model = Positioner(points, aps, use_map)
    signals, radio_map = torch.rand(batch, length, aps), torch.rand(points, aps)
    target = torch.arange(batch * length) % points
    opt = torch.optim.Adam(model.parameters(), 1e-4)

    def step() -> None:
        kept = (torch.rand(aps) >= 0.2).float()  # AP removal, as the jaxfp step draws it
        opt.zero_grad(set_to_none=True)
        logits = model(signals * kept, radio_map * kept)
        F.cross_entropy(logits.reshape(-1, points), target).backward()
        opt.step()

    return step, batch


class ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.scale * grad, None


def block(cin: int, cout: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, padding="same", bias=False),
        nn.BatchNorm2d(cout, momentum=0.1),
        nn.LeakyReLU(0.1),
    )


class Residual(nn.Module):
    def __init__(self, cin: int, features: int) -> None:
        super().__init__()
        self.first = block(cin, features, 3)
        self.second = nn.Sequential(
            nn.Conv2d(features, features, 3, padding="same", bias=False),
            nn.BatchNorm2d(features, momentum=0.1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(self.second(self.first(x)) + x, 0.1)


def itoloc_head(kind: str, outputs: int) -> nn.Module:
    if kind == "residual":
        first, second = Residual(32, 32), Residual(32, 32)
    else:
        k = 5 if kind == "conv5" else 3
        first, second = block(32, 32, k), block(32, 64, k)
    return nn.Sequential(
        first,
        nn.MaxPool2d(2, 2, ceil_mode=True),
        nn.Dropout(0.5),
        second,
        nn.AvgPool2d(2, 2, ceil_mode=True),  # Fig. 8's average-pooling, then the FC over the map
        nn.Flatten(),
        nn.LazyLinear(outputs),
    )


class ItoLocNet(nn.Module):
    def __init__(self, locations: int, domains: int, heads: tuple[str, ...]) -> None:
        super().__init__()
        self.extractor = nn.Sequential(block(1, 32, 3), block(32, 32, 3))
        self.heads = nn.ModuleList([itoloc_head(k, locations) for k in heads])
        self.discriminator = itoloc_head("conv3", domains)

    def forward(self, image: torch.Tensor, reversal: float) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.extractor(image[:, None])
        logits = torch.stack([h(z) for h in self.heads])
        return logits, self.discriminator(ReverseGradient.apply(z, reversal))


def itoloc_case(
    heads: tuple[str, ...], adversary: float, batch: int, side: int, locations: int, domains: int
) -> tuple[Step, int]:
    """Eq. 11 as `jaxfp.methods.itoloc.losses.make_loss` computes it, SGD with momentum."""
    model = ItoLocNet(locations, domains, heads)
    images = torch.randn(batch, side, side)
    rp = torch.arange(batch) % locations
    domain = torch.arange(batch) % domains
    grid = torch.arange(float(locations))
    distances = (grid[:, None] - grid[None]).abs()
    with torch.no_grad():  # sizes the lazy FC layers over the pooled maps
        model(images, adversary)
    opt = torch.optim.SGD(model.parameters(), 0.1, momentum=0.9)
    model.train()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        logits, domain_logits = model(images, adversary)
        log_p = F.log_softmax(logits, -1)
        la = -log_p.gather(-1, rp.expand(len(heads), -1)[..., None]).mean(1).sum()
        ls = (distances[rp] * log_p.exp()).sum(-1).mean(1).sum()
        ld = F.cross_entropy(domain_logits, domain)
        (la + 0.1 * ls + ld).backward()
        opt.step()

    return step, batch


class EdgeSageLayer(nn.Module):
    """`jaxfp.methods.gufu.sage.EdgeSAGELayer`: mean of [sender ⊕ edge] over incoming edges."""

    def __init__(self, node_in: int, edge_in: int, features: int) -> None:
        super().__init__()
        self.node = nn.Linear(2 * node_in + edge_in, features)
        self.edge = nn.Linear(2 * features + edge_in, features)

    def forward(
        self,
        nodes: torch.Tensor,
        edges: torch.Tensor,
        senders: torch.Tensor,
        receivers: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        message = torch.cat([nodes[senders], edges], -1)
        total = nodes.new_zeros(nodes.shape[0], message.shape[1]).index_add_(0, receivers, message)
        count = nodes.new_zeros(nodes.shape[0]).index_add_(
            0, receivers, nodes.new_ones(len(receivers))
        )
        neighbours = total / count.clamp(min=1.0)[:, None]
        h = F.normalize(F.relu(self.node(torch.cat([nodes, neighbours], -1))), dim=-1, eps=1e-12)
        e = F.relu(self.edge(torch.cat([h[senders], h[receivers], edges], -1)))
        return h, e


def graphsage_case(nodes: int, edges: int, node_in: int, features: int) -> tuple[Step, int]:
    """Two EdgeSAGE layers and a 2-D head on every node, MSE, Adam: one full-graph step. An edge
    starts from the mean of its end nodes' features, as in `jaxfp.methods.gufu.sage`."""
    generator = torch.Generator().manual_seed(0)
    senders = torch.randint(0, nodes, (edges,), generator=generator)
    receivers = torch.randint(0, nodes, (edges,), generator=generator)
    x = torch.randn(nodes, node_in)
    target = torch.zeros(nodes, 2)
    layers = nn.ModuleList(
        [EdgeSageLayer(node_in, node_in, features), EdgeSageLayer(features, features, features)]
    )
    head = nn.Linear(features, 2)
    opt = torch.optim.Adam([*layers.parameters(), *head.parameters()], 1e-3)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        h, m = x, 0.5 * (x[senders] + x[receivers])
        for layer in layers:
            h, m = layer(h, m, senders, receivers)
        F.mse_loss(head(h), target, reduction="none").sum(-1).mean().backward()
        opt.step()

    return step, nodes


def conv_trunk(cin: int, filters: tuple[int, ...]) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for width in filters:
        layers += [nn.Conv1d(cin, width, 3, padding=1), nn.LeakyReLU(0.2)]
        cin = width
    return [*layers, nn.Flatten()]


class GanNet(nn.Module):
    """ComGAN's generator / critic / RP estimator (`jaxfp.methods.comgan.nets`): Conv1D over the
    RUs with the RP broadcast as channels, then dense layers."""

    def __init__(
        self, cin: int, filters: tuple[int, ...], dense: int, out: int, length: int, act: nn.Module
    ) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *conv_trunk(cin, filters),
            nn.Linear(filters[-1] * length, dense),
            act,
            nn.Linear(dense, out),
        )

    def forward(self, channels: list[torch.Tensor], rp: torch.Tensor | None) -> torch.Tensor:
        x = torch.stack(channels, 1)  # (B, C, L)
        if rp is not None:
            x = torch.cat([x, rp[:, :, None].expand(-1, -1, x.shape[-1])], 1)
        return self.body(x)


def comgan_case(
    rus: int, rp_dims: int, batch: int, n_critic: int = 5, measured: int = 1
) -> tuple[Step, int]:
    """One WGAN-GP iteration as `jaxfp.methods.comgan.training.make_iteration` runs it: n_critic
    critic steps (Wasserstein + λ1 gradient penalty per sample + the estimator's RP MSE), then one
    generator step (adversarial + λ2 RP consistency + λ3 L1); Adam for both players."""
    generator = GanNet(2 + rp_dims, (16, 64, 128, 64, 16), 96, rus, rus, nn.ReLU())
    critic = GanNet(1 + rp_dims, (16, 64, 128), 8, 1, rus, nn.LeakyReLU(0.2))
    estimator = GanNet(1, (16, 64, 128), 8, rp_dims, rus, nn.LeakyReLU(0.2))
    g_opt = torch.optim.Adam(generator.parameters(), 1e-4)
    c_opt = torch.optim.Adam([*critic.parameters(), *estimator.parameters()], 1e-4)
    rss = torch.randn(n_critic + 1, batch, rus)
    rp = torch.randn(n_critic + 1, batch, rp_dims)

    def fake_of(real: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        scores = torch.rand(real.shape)
        mask = (scores <= scores.sort(1).values[:, measured - 1 : measured]).float()
        return generator([real * mask, mask], position)

    def step() -> None:
        for i in range(n_critic):
            real, position = rss[i], rp[i]
            with torch.no_grad():
                fake = fake_of(real, position)
            eps = torch.rand(batch, 1)
            inter = (eps * real + (1 - eps) * fake).requires_grad_(True)
            (grad,) = torch.autograd.grad(critic([inter], position).sum(), inter, create_graph=True)
            penalty = ((grad.pow(2).sum(-1) + 1e-12).sqrt() - 1) ** 2
            wasserstein = critic([fake], position).mean() - critic([real], position).mean()
            rp_mse = (estimator([real], None) - position).pow(2).sum(-1).mean()
            c_opt.zero_grad(set_to_none=True)
            (wasserstein + 10.0 * penalty.mean() + rp_mse).backward()
            c_opt.step()
        real, position = rss[-1], rp[-1]
        fake = fake_of(real, position)
        consistency = (estimator([real], None) - estimator([fake], None)).pow(2).sum(-1).mean()
        loss = -critic([fake], position).mean() + consistency + 100.0 * (fake - real).abs().mean()
        g_opt.zero_grad(set_to_none=True)
        loss.backward()
        g_opt.step()

    return step, batch
