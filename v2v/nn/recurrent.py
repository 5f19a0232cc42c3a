"""Convolutional recurrent cells: ConvGRU (DVD-GAN formulation) and ConvLSTM.

``ConvGRUCell(x, h)`` with ``x: B,Cin,H,W`` and ``h: B,Ch,H,W`` (zeros when None)::

    z  = cat(x, h)
    u  = sigmoid(update_gate(z))            # update gate
    r  = sigmoid(reset_gate(z))             # reset gate
    o  = tanh(out_gate(cat(x, r * h)))      # candidate
    h' = h * (1 - u) + o * u

(exactly the DVD-GAN / mt_videosynthesis ``ConvGRUCell``; parameter names ``reset_gate``,
``update_gate``, ``out_gate``, each a Conv2d(Cin+Ch -> Ch, k, padding k//2)).

``ConvLSTMCell(x, (h, c))``: one conv ``gates`` over ``cat(x, h)`` -> ``4*Ch`` channels split
in the order ``i, f, o, g``; ``c' = sigmoid(f) * c + sigmoid(i) * tanh(g)``,
``h' = sigmoid(o) * tanh(c')``. Returns ``(h', c')``.

``ConvGRU`` stacks cells: layer j's input is layer j-1's new state; ``forward(x, hidden)`` returns
the list of new states (one per layer). ``run_sequence`` unrolls over ``x: B,T,C,H,W``.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["ConvGRU", "ConvGRUCell", "ConvLSTMCell", "run_sequence"]


class ConvGRUCell(nn.Module):
    """Convolutional GRU cell; see the module docstring. ``init="orthogonal"`` as DVD-GAN.

    Args:
        input_channels, hidden_channels: Cin and Ch.
        kernel_size: of the three gate convs (padding k // 2).
        init: ``"orthogonal"`` (DVD-GAN) or ``"default"`` (torch's).

    Example:
        >>> ConvGRUCell(3, 8)(torch.rand(2, 3, 4, 4), None).shape
        torch.Size([2, 8, 4, 4])
    """

    def __init__(self, input_channels: int, hidden_channels: int, kernel_size: int = 3, init: str = "orthogonal"):
        super().__init__()
        self.input_channels = input_channels
        self.hidden_channels = hidden_channels
        pad = kernel_size // 2
        c = input_channels + hidden_channels
        self.reset_gate = nn.Conv2d(c, hidden_channels, kernel_size, padding=pad)
        self.update_gate = nn.Conv2d(c, hidden_channels, kernel_size, padding=pad)
        self.out_gate = nn.Conv2d(c, hidden_channels, kernel_size, padding=pad)
        if init == "orthogonal":
            for m in (self.reset_gate, self.update_gate, self.out_gate):
                nn.init.orthogonal_(m.weight)
                nn.init.zeros_(m.bias)

    def init_state(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_zeros(x.shape[0], self.hidden_channels, *x.shape[2:])

    def forward(self, x: torch.Tensor, h: torch.Tensor | None = None) -> torch.Tensor:
        if h is None:
            h = self.init_state(x)
        z = torch.cat([x, h], 1)
        u = torch.sigmoid(self.update_gate(z))
        r = torch.sigmoid(self.reset_gate(z))
        o = torch.tanh(self.out_gate(torch.cat([x, h * r], 1)))
        return h * (1 - u) + o * u


class ConvLSTMCell(nn.Module):
    """Convolutional LSTM cell; see the module docstring. ``forget_bias`` is added to f's bias.

    Args:
        input_channels, hidden_channels: Cin and Ch.
        kernel_size: of the gate conv.
        forget_bias: added to the forget gate's bias at init.

    Example:
        >>> h, c = ConvLSTMCell(3, 8)(torch.rand(2, 3, 4, 4), None)
        >>> h.shape, c.shape
        (torch.Size([2, 8, 4, 4]), torch.Size([2, 8, 4, 4]))
    """

    def __init__(self, input_channels: int, hidden_channels: int, kernel_size: int = 3, forget_bias: float = 0.0):
        super().__init__()
        self.input_channels = input_channels
        self.hidden_channels = hidden_channels
        self.gates = nn.Conv2d(input_channels + hidden_channels, 4 * hidden_channels, kernel_size,
                               padding=kernel_size // 2)
        if forget_bias:
            with torch.no_grad():
                self.gates.bias[hidden_channels:2 * hidden_channels] += forget_bias

    def init_state(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = x.new_zeros(x.shape[0], self.hidden_channels, *x.shape[2:])
        return z, z.clone()

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None):
        h, c = self.init_state(x) if state is None else state
        i, f, o, g = self.gates(torch.cat([x, h], 1)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


class ConvGRU(nn.Module):
    """Stack of :class:`ConvGRUCell` (parameter names ``cells.{j}.{reset,update,out}_gate.*``).

    ``forward(x, hidden)``: ``x: B,Cin,H,W``; ``hidden`` a list (one ``B,Ch_j,H,W`` per layer,
    None entries = zeros) or None. Returns the list of new states; the last is the output.

    Args:
        input_channels: Cin.
        hidden_channels: one width for every layer, or a list.
        kernel_sizes: one size, or a list.
        n_layers: number of stacked cells.
        init: as :class:`ConvGRUCell`.

    Example:
        >>> [h.shape[1] for h in ConvGRU(3, [8, 4], n_layers=2)(torch.rand(1, 3, 4, 4))]
        [8, 4]
    """

    def __init__(self, input_channels: int, hidden_channels: int | Sequence[int], kernel_sizes: int | Sequence[int] = 3,
                 n_layers: int = 1, init: str = "orthogonal"):
        super().__init__()
        hs = [hidden_channels] * n_layers if isinstance(hidden_channels, int) else list(hidden_channels)
        ks = [kernel_sizes] * n_layers if isinstance(kernel_sizes, int) else list(kernel_sizes)
        if len(hs) != n_layers or len(ks) != n_layers:
            raise ValueError("hidden_channels / kernel_sizes lists must have n_layers entries")
        ins = [input_channels] + hs[:-1]
        self.cells = nn.ModuleList(ConvGRUCell(i, h, k, init) for i, h, k in zip(ins, hs, ks))

    def forward(self, x: torch.Tensor, hidden: Sequence[torch.Tensor | None] | None = None) -> list[torch.Tensor]:
        hidden = list(hidden) if hidden is not None else []
        hidden += [None] * (len(self.cells) - len(hidden))
        out, inp = [], x
        for cell, h in zip(self.cells, hidden):
            inp = cell(inp, h)
            out.append(inp)
        return out


def run_sequence(cell: nn.Module, x: torch.Tensor, state=None):
    """Unroll ``cell`` over ``x: B,T,C,H,W``. Returns (outputs ``B,T,Ch,H,W``, final state).

    Works for :class:`ConvGRUCell` (state = h), :class:`ConvLSTMCell` (state = (h, c)) and
    :class:`ConvGRU` (state = list; the output is the last layer's state).

    Args:
        cell: a recurrent cell or stack.
        x: ``B,T,C,H,W``.
        state: initial state (None = zeros).

    Returns:
        ``(outputs B,T,Ch,H,W, final state)``.

    Example:
        >>> out, h = run_sequence(ConvGRUCell(3, 8), torch.rand(2, 5, 3, 4, 4))
        >>> out.shape
        torch.Size([2, 5, 8, 4, 4])
    """
    if x.dim() != 5:
        raise ValueError(f"run_sequence: x must be B,T,C,H,W, got {tuple(x.shape)}")
    outs = []
    for t in range(x.shape[1]):
        state = cell(x[:, t], state)
        if isinstance(state, tuple):
            outs.append(state[0])
        elif isinstance(state, list):
            outs.append(state[-1])
        else:
            outs.append(state)
    return torch.stack(outs, 1), state
