"""ConvGRU / ConvLSTM: analytic values at zero input/state, official DVD-GAN ConvGRU parity."""
from __future__ import annotations

import numpy as np
import torch

from v2v.nn.recurrent import ConvGRU, ConvGRUCell, ConvLSTMCell, run_sequence


def test_gru_zero_input_zero_state_analytic():
    cell = ConvGRUCell(2, 3, 3)
    with torch.no_grad():
        cell.update_gate.bias.copy_(torch.tensor([0.0, 1.0, -2.0]))
        cell.out_gate.bias.copy_(torch.tensor([0.5, -1.0, 3.0]))
        cell.reset_gate.bias.copy_(torch.tensor([9.0, 9.0, 9.0]))  # irrelevant when h = 0
        h = cell(torch.zeros(1, 2, 4, 5))
    want = torch.sigmoid(torch.tensor([0.0, 1.0, -2.0])) * torch.tanh(torch.tensor([0.5, -1.0, 3.0]))
    torch.testing.assert_close(h, want.view(1, 3, 1, 1).expand(1, 3, 4, 5))


def test_gru_keeps_state_when_update_gate_closed():
    torch.manual_seed(0)
    cell = ConvGRUCell(2, 3, 3)
    with torch.no_grad():
        cell.update_gate.weight.zero_()
        cell.update_gate.bias.fill_(-1e4)  # u = 0 -> h' = h
        h0 = torch.randn(1, 3, 4, 4)
        torch.testing.assert_close(cell(torch.randn(1, 2, 4, 4), h0), h0)


def test_lstm_zero_input_zero_state_analytic():
    cell = ConvLSTMCell(2, 2, 3)
    with torch.no_grad():
        cell.gates.weight.zero_()
        # gate order i, f, o, g (2 channels each)
        cell.gates.bias.copy_(torch.tensor([1.0, -1.0, 5.0, 5.0, 0.0, 2.0, 0.3, -0.7]))
        h, c = cell(torch.zeros(1, 2, 3, 3))
    c_want = torch.sigmoid(torch.tensor([1.0, -1.0])) * torch.tanh(torch.tensor([0.3, -0.7]))
    h_want = torch.sigmoid(torch.tensor([0.0, 2.0])) * torch.tanh(c_want)
    torch.testing.assert_close(c[0, :, 1, 1], c_want)
    torch.testing.assert_close(h[0, :, 0, 2], h_want)
    # second step with zero input: forget gate multiplies the old cell
    with torch.no_grad():
        _h2, c2 = cell(torch.zeros(1, 2, 3, 3), (torch.zeros_like(h), c))
    torch.testing.assert_close(c2[0, :, 1, 1], torch.sigmoid(torch.tensor([5.0, 5.0])) * c_want + c_want)


def test_run_sequence_and_stack():
    torch.manual_seed(1)
    gru = ConvGRU(2, [3, 4], [3, 5], n_layers=2)
    x = torch.randn(2, 3, 2, 5, 5)
    outs, state = run_sequence(gru, x)
    assert outs.shape == (2, 3, 4, 5, 5) and len(state) == 2
    h = None
    with torch.no_grad():
        for t in range(3):
            h = gru(x[:, t], h)
        torch.testing.assert_close(outs[:, -1], h[-1])
    lstm = ConvLSTMCell(2, 3)
    o, (hh, _cc) = run_sequence(lstm, x)
    torch.testing.assert_close(o[:, -1], hh)


def test_dvd_gan_convgru_parity(shared):
    """Level-0 ConvGRU of the official style_dvdgan generator: input = learned constant, h0 = deepest feature."""
    d = shared / "fixtures" / "style_dvdgan"
    sd = torch.load(d / "latest_netG.pth", map_location="cpu", weights_only=True)
    c = np.load(d / "cases.npz")
    gru = ConvGRU(32, 32, 3, n_layers=1)
    gru.load_state_dict({k[len("rnn.0."):]: v for k, v in sd.items() if k.startswith("rnn.0.")})
    h0 = torch.from_numpy(c["g_enc3"])
    y = sd["input.input"].expand(h0.shape[0], -1, -1, -1)
    want = torch.from_numpy(c["g_gru0"])
    h = [h0]
    with torch.no_grad():
        for t in range(want.shape[1]):
            h = gru(y, h)
            torch.testing.assert_close(h[-1], want[:, t], atol=1e-5, rtol=1e-5)
