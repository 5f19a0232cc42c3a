"""pix2pixHD image generators (Wang et al., CVPR 2018), shared by vid2vid, EDN and Img2Vid.

One residual block and three generators, each with the **official submodule layout**, so an
official state dict loads with at most a pure key filter (``module.`` stripped,
``num_batches_tracked`` optional):

- :class:`ResnetBlock`: ``x + conv_block(x)``; ``conv_block`` = [pad, conv3x3, norm, act,
  (dropout), pad, conv3x3, norm] (keys ``conv_block.1`` / ``.2`` / ``.5`` / ``.6`` with reflect
  padding, as pix2pixHD / vid2vid / EDN save them).
- :class:`GlobalGenerator`: ``model`` = [RPad3, Conv7x7, norm, ReLU] + n_downsampling x
  [Conv3x3 s2, norm, ReLU] + n_blocks x ResnetBlock + n_downsampling x [ConvT3x3 s2, norm, ReLU]
  + [RPad3, Conv7x7, Tanh] (paper Sec. 3.2, "G1").
- :class:`LocalEnhancer`: the global generator (without its last three layers, ``model``) on the
  input downsampled ``n_local_enhancers`` times, then per enhancer ``model{n}_1`` (front-end
  downsampling) and ``model{n}_2`` (residual blocks, ConvT, and for the last one the output
  layers) whose input is the SUM of the front-end features and the coarser output ("G2").
- :class:`UnetGenerator`: the pix2pix U-Net (``model`` = nested :class:`UnetSkipConnectionBlock`).

Norm names are those of :func:`v2v.nn.norms.get_norm_layer` (``instance``, ``batch``, ``none``);
``track_running_stats=True`` gives vid2vid's InstanceNorm (running buffers, used in eval mode).
Images are whatever range the caller uses (the official models: labels {0,1}, outputs [-1,1]).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from v2v.errors import V2VError
from v2v.nn.norms import get_norm_layer

__all__ = ["GlobalGenerator", "LocalEnhancer", "ResnetBlock", "UnetGenerator", "UnetSkipConnectionBlock",
           "check_divisible", "down_layers", "stem_layers", "up_layers"]


def check_divisible(x: torch.Tensor, channels: int, factor: int, what: str = "generator") -> None:
    """One-line input check: ``x`` is ``B,channels,H,W`` with H and W multiples of ``factor``.

    Args:
        x: input tensor.
        channels: expected channel count C.
        factor: total downsampling factor of the network.
        what: name used in the error message.

    Raises:
        V2VError: naming the shape received and the size needed.

    Example:
        >>> check_divisible(torch.zeros(1, 3, 64, 96), 3, 32)
    """
    if x.dim() != 4 or x.shape[1] != channels:
        raise V2VError(f"{what}: expected input B,{channels},H,W, got {tuple(x.shape)}")
    h, w = x.shape[-2:]
    if h % factor or w % factor:
        nh, nw = -(-h // factor) * factor, -(-w // factor) * factor
        raise V2VError(f"{what}: input size {h}x{w} is not divisible by the total downsampling factor "
                       f"{factor}; use a size that is (e.g. {nh}x{nw})")


def _norm(norm: str, ch: int, track_running_stats: bool | None) -> nn.Module:
    return get_norm_layer(norm, ch, track_running_stats=track_running_stats)


def _pad_layer(padding_type: str) -> tuple[list[nn.Module], int]:
    if padding_type == "reflect":
        return [nn.ReflectionPad2d(1)], 0
    if padding_type == "replicate":
        return [nn.ReplicationPad2d(1)], 0
    if padding_type == "zero":
        return [], 1
    raise V2VError(f"padding_type must be reflect, replicate or zero, got '{padding_type}'")


class ResnetBlock(nn.Module):
    """The pix2pixHD residual block: ``x + conv_block(x)`` (no activation after the sum).

    Args:
        dim: channels C (input and output).
        norm: norm layer name (``instance``, ``batch``, ``none``).
        padding_type: ``reflect`` (official default), ``replicate`` or ``zero``.
        use_dropout: Dropout(0.5) between the two convolutions (shifts the second conv's index).
        track_running_stats: passed to the norm layers (None: the norm's default).

    Shape:
        input ``B,C,H,W`` -> output ``B,C,H,W``.

    Example:
        >>> blk = ResnetBlock(8, norm="batch")
        >>> blk(torch.randn(2, 8, 16, 16)).shape
        torch.Size([2, 8, 16, 16])
        >>> sorted({k.rsplit('.', 1)[0] for k in blk.state_dict()})
        ['conv_block.1', 'conv_block.2', 'conv_block.5', 'conv_block.6']
    """

    def __init__(self, dim: int, norm: str = "instance", padding_type: str = "reflect", use_dropout: bool = False,
                 track_running_stats: bool | None = None):
        super().__init__()
        pad, p = _pad_layer(padding_type)
        layers = pad + [nn.Conv2d(dim, dim, 3, padding=p), _norm(norm, dim, track_running_stats), nn.ReLU(True)]
        if use_dropout:
            layers.append(nn.Dropout(0.5))
        pad, p = _pad_layer(padding_type)
        layers += pad + [nn.Conv2d(dim, dim, 3, padding=p), _norm(norm, dim, track_running_stats)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


def down_layers(cin: int, cout: int, norm: str = "instance", track_running_stats: bool | None = None) -> list[nn.Module]:
    """[Conv3x3 stride 2 (zero padding 1), norm, ReLU]: ``B,cin,H,W`` -> ``B,cout,H/2,W/2``.

    Args:
        cin, cout: channels in and out.
        norm, track_running_stats: the norm layer (:func:`v2v.nn.norms.get_norm_layer`).

    Returns:
        three modules, to be spliced into an ``nn.Sequential`` (official index layout).

    Example:
        >>> nn.Sequential(*down_layers(4, 8))(torch.rand(1, 4, 16, 16)).shape
        torch.Size([1, 8, 8, 8])
    """
    return [nn.Conv2d(cin, cout, 3, stride=2, padding=1), _norm(norm, cout, track_running_stats), nn.ReLU(True)]


def up_layers(cin: int, cout: int, norm: str = "instance", track_running_stats: bool | None = None) -> list[nn.Module]:
    """[ConvTranspose3x3 stride 2 (padding 1, output_padding 1), norm, ReLU]: ``H,W`` -> ``2H,2W``.

    Args:
        cin, cout: channels in and out.
        norm, track_running_stats: the norm layer.

    Returns:
        three modules (official index layout).

    Example:
        >>> nn.Sequential(*up_layers(8, 4))(torch.rand(1, 8, 8, 8)).shape
        torch.Size([1, 4, 16, 16])
    """
    return [nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1),
            _norm(norm, cout, track_running_stats), nn.ReLU(True)]


def stem_layers(cin: int, cout: int, norm: str = "instance", track_running_stats: bool | None = None) -> list[nn.Module]:
    """[ReflectionPad(3), Conv7x7, norm, ReLU]: ``B,cin,H,W`` -> ``B,cout,H,W``.

    Args:
        cin, cout: channels in and out.
        norm, track_running_stats: the norm layer.

    Returns:
        four modules (official index layout: the conv is index 1, the norm index 2).

    Example:
        >>> nn.Sequential(*stem_layers(3, 4))(torch.rand(1, 3, 16, 16)).shape
        torch.Size([1, 4, 16, 16])
    """
    return [nn.ReflectionPad2d(3), nn.Conv2d(cin, cout, 7), _norm(norm, cout, track_running_stats), nn.ReLU(True)]


class GlobalGenerator(nn.Module):
    """pix2pixHD global generator G1 (paper Sec. 3.2): conv front-end, residual blocks, ConvT back-end.

    Args:
        input_nc: input channels (e.g. label_nc one-hot channels).
        output_nc: output channels (3 for RGB).
        ngf: width of the first layer; doubles at every downsampling.
        n_downsampling: number of stride-2 convolutions (and of ConvT upsamplings).
        n_blocks: residual blocks at the bottleneck.
        norm: norm layer name (``instance`` in pix2pixHD, ``batch`` possible).
        padding_type: padding of the residual blocks.
        max_channels: cap on the width (vid2vid's copy caps at 1024; pix2pixHD has none: None).
        track_running_stats: for the norm layers (vid2vid's InstanceNorm: True).

    Shape:
        ``forward(x)``: ``B,input_nc,H,W`` (H, W multiples of ``2**n_downsampling``) ->
        ``B,output_nc,H,W`` in [-1, 1]. ``forward(x, feat)`` concatenates ``feat`` to ``x`` first
        (official signature). ``return_features=True`` also returns a dict with ``bottleneck``
        (after downsampling), ``after_resblocks`` and ``pre_tanh``.

    Example:
        >>> G = GlobalGenerator(4, 3, ngf=4, n_downsampling=2, n_blocks=1)
        >>> G(torch.rand(1, 4, 32, 32)).shape
        torch.Size([1, 3, 32, 32])
        >>> next(iter(G.state_dict()))
        'model.1.weight'
    """

    def __init__(self, input_nc: int, output_nc: int, ngf: int = 64, n_downsampling: int = 3, n_blocks: int = 9,
                 norm: str = "instance", padding_type: str = "reflect", max_channels: int | None = None,
                 track_running_stats: bool | None = None):
        super().__init__()
        if n_blocks < 0 or n_downsampling < 0:
            raise V2VError(f"GlobalGenerator: n_blocks and n_downsampling must be >= 0, got {n_blocks}, "
                           f"{n_downsampling}")
        cap = (lambda c: min(max_channels, c)) if max_channels else (lambda c: c)
        self.input_nc, self.n_downsampling = input_nc, n_downsampling
        trs = track_running_stats
        model = stem_layers(input_nc, ngf, norm, trs)
        for i in range(n_downsampling):
            model += down_layers(cap(ngf * 2**i), cap(ngf * 2 ** (i + 1)), norm, trs)
        for _ in range(n_blocks):
            model.append(ResnetBlock(cap(ngf * 2**n_downsampling), norm, padding_type, track_running_stats=trs))
        for i in range(n_downsampling):
            m = 2 ** (n_downsampling - i)
            model += up_layers(cap(ngf * m), cap(ngf * m // 2), norm, trs)
        model += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*model)
        self._n_front = 4 + 3 * n_downsampling
        self._n_blocks = n_blocks

    def forward(self, x: torch.Tensor, feat: torch.Tensor | None = None, return_features: bool = False):
        if feat is not None:
            x = torch.cat([x, feat], 1)
        check_divisible(x, self.input_nc, 2**self.n_downsampling, "GlobalGenerator")
        if not return_features:
            return self.model(x)
        feats = {}
        for i, layer in enumerate(self.model):
            if i == len(self.model) - 1:
                feats["pre_tanh"] = x
            x = layer(x)
            if i == self._n_front - 1:
                feats["bottleneck"] = x
            if i == self._n_front + self._n_blocks - 1:
                feats["after_resblocks"] = x
        return x, feats


class LocalEnhancer(nn.Module):
    """pix2pixHD coarse-to-fine generator G = {G1, G2} (paper Sec. 3.2, ``n_local_enhancers`` >= 1).

    Args:
        input_nc, output_nc: channels in and out.
        ngf: width of the finest enhancer; the global generator has ``ngf * 2**n_local_enhancers``.
        n_downsample_global: downsamplings of the global generator.
        n_blocks_global: residual blocks of the global generator.
        n_local_enhancers: number of enhancers (each doubles the resolution).
        n_blocks_local: residual blocks per enhancer.
        norm, padding_type, max_channels, track_running_stats: as :class:`GlobalGenerator`.

    Shape:
        ``B,input_nc,H,W`` (H, W multiples of ``2**(n_downsample_global + n_local_enhancers)``) ->
        ``B,output_nc,H,W`` in [-1, 1]. The input pyramid uses
        ``AvgPool2d(3, stride=2, padding=1, count_include_pad=False)``.

    Example:
        >>> G = LocalEnhancer(4, 3, ngf=2, n_downsample_global=2, n_blocks_global=1, n_blocks_local=1)
        >>> G(torch.rand(1, 4, 32, 32)).shape
        torch.Size([1, 3, 32, 32])
        >>> sorted({k.split('.')[0] for k in G.state_dict()})
        ['model', 'model1_1', 'model1_2']
    """

    def __init__(self, input_nc: int, output_nc: int, ngf: int = 32, n_downsample_global: int = 3,
                 n_blocks_global: int = 9, n_local_enhancers: int = 1, n_blocks_local: int = 3,
                 norm: str = "instance", padding_type: str = "reflect", max_channels: int | None = None,
                 track_running_stats: bool | None = None):
        super().__init__()
        if n_local_enhancers < 1:
            raise V2VError(f"LocalEnhancer: n_local_enhancers must be >= 1, got {n_local_enhancers}")
        self.input_nc, self.n_local_enhancers = input_nc, n_local_enhancers
        self.factor = 2 ** (n_downsample_global + n_local_enhancers)
        trs = track_running_stats
        g = GlobalGenerator(input_nc, output_nc, ngf * 2**n_local_enhancers, n_downsample_global, n_blocks_global,
                            norm, padding_type, max_channels, trs)
        self.model = nn.Sequential(*list(g.model)[:-3])   # without the output layers
        for n in range(1, n_local_enhancers + 1):
            w = ngf * 2 ** (n_local_enhancers - n)
            down = stem_layers(input_nc, w, norm, trs) + down_layers(w, 2 * w, norm, trs)
            up = [ResnetBlock(2 * w, norm, padding_type, track_running_stats=trs) for _ in range(n_blocks_local)]
            up += up_layers(2 * w, w, norm, trs)
            if n == n_local_enhancers:
                up += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
            setattr(self, f"model{n}_1", nn.Sequential(*down))
            setattr(self, f"model{n}_2", nn.Sequential(*up))

    @staticmethod
    def downsample(x: torch.Tensor) -> torch.Tensor:
        """``AvgPool2d(3, stride=2, padding=1, count_include_pad=False)`` (the official input pyramid)."""
        return F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor, feat: torch.Tensor | None = None) -> torch.Tensor:
        if feat is not None:
            x = torch.cat([x, feat], 1)
        check_divisible(x, self.input_nc, self.factor, "LocalEnhancer")
        pyr = [x]
        for _ in range(self.n_local_enhancers):
            pyr.append(self.downsample(pyr[-1]))
        out = self.model(pyr[-1])
        for n in range(1, self.n_local_enhancers + 1):
            front = getattr(self, f"model{n}_1")(pyr[self.n_local_enhancers - n])
            out = getattr(self, f"model{n}_2")(front + out)
        return out


class UnetSkipConnectionBlock(nn.Module):
    """One pix2pix U-Net level: ``cat([x, model(x)])`` (outermost: ``model(x)``).

    ``model`` = [LeakyReLU(0.2), Conv4x4 s2, norm] + [submodule] + [ReLU, ConvT4x4 s2, norm]
    (outermost: no LeakyReLU/norm before, Tanh after; innermost: no norm before, no submodule).
    The LeakyReLU is in-place as upstream, so the skip connection carries ``lrelu(x)``.

    Args:
        outer_nc: channels of this level's output (before the skip concatenation).
        inner_nc: channels after this level's downsampling.
        input_nc: input channels (default ``outer_nc``).
        submodule: the next inner level.
        outermost, innermost: position of the level.
        norm: ``batch`` (convs without bias) or ``instance`` (convs with bias), as upstream.
        use_dropout: Dropout(0.5) after the up-path norm (middle levels).

    Example:
        >>> inner = UnetSkipConnectionBlock(8, 8, innermost=True)
        >>> UnetSkipConnectionBlock(3, 8, input_nc=3, submodule=inner, outermost=True)(torch.rand(1, 3, 8, 8)).shape
        torch.Size([1, 3, 8, 8])
    """

    def __init__(self, outer_nc: int, inner_nc: int, input_nc: int | None = None, submodule: nn.Module | None = None,
                 outermost: bool = False, innermost: bool = False, norm: str = "batch", use_dropout: bool = False):
        super().__init__()
        self.outermost = outermost
        input_nc = outer_nc if input_nc is None else input_nc
        bias = norm.lower().startswith("instance")
        downconv = nn.Conv2d(input_nc, inner_nc, 4, stride=2, padding=1, bias=bias)
        if outermost:
            model = [downconv, submodule, nn.ReLU(True),
                     nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, stride=2, padding=1), nn.Tanh()]
        elif innermost:
            model = [nn.LeakyReLU(0.2, True), downconv, nn.ReLU(True),
                     nn.ConvTranspose2d(inner_nc, outer_nc, 4, stride=2, padding=1, bias=bias),
                     get_norm_layer(norm, outer_nc)]
        else:
            model = [nn.LeakyReLU(0.2, True), downconv, get_norm_layer(norm, inner_nc), submodule, nn.ReLU(True),
                     nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, stride=2, padding=1, bias=bias),
                     get_norm_layer(norm, outer_nc)] + ([nn.Dropout(0.5)] if use_dropout else [])
        self.model = nn.Sequential(*model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    """pix2pix U-Net generator (``num_downs`` levels; widths ngf, 2ngf, 4ngf, 8ngf, 8ngf, ...).

    Args:
        input_nc, output_nc: channels in and out.
        num_downs: number of levels (>= 5); the input side must be a multiple of ``2**num_downs``.
        ngf: width of the outermost level.
        norm: ``batch`` (default, upstream) or ``instance``.
        use_dropout: dropout in the ``num_downs - 5`` innermost 8ngf levels.

    Shape:
        ``B,input_nc,H,W`` -> ``B,output_nc,H,W`` in [-1, 1].

    Example:
        >>> G = UnetGenerator(3, 3, num_downs=5, ngf=4)
        >>> G(torch.rand(1, 3, 32, 32)).shape
        torch.Size([1, 3, 32, 32])
    """

    def __init__(self, input_nc: int, output_nc: int, num_downs: int = 5, ngf: int = 64, norm: str = "batch",
                 use_dropout: bool = False):
        super().__init__()
        if num_downs < 5:
            raise V2VError(f"UnetGenerator: num_downs must be >= 5, got {num_downs}")
        self.input_nc, self.factor = input_nc, 2**num_downs
        blk = UnetSkipConnectionBlock(ngf * 8, ngf * 8, innermost=True, norm=norm)
        for _ in range(num_downs - 5):
            blk = UnetSkipConnectionBlock(ngf * 8, ngf * 8, submodule=blk, norm=norm, use_dropout=use_dropout)
        blk = UnetSkipConnectionBlock(ngf * 4, ngf * 8, submodule=blk, norm=norm)
        blk = UnetSkipConnectionBlock(ngf * 2, ngf * 4, submodule=blk, norm=norm)
        blk = UnetSkipConnectionBlock(ngf, ngf * 2, submodule=blk, norm=norm)
        self.model = UnetSkipConnectionBlock(output_nc, ngf, input_nc=input_nc, submodule=blk, outermost=True,
                                             norm=norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_divisible(x, self.input_nc, self.factor, "UnetGenerator")
        return self.model(x)
