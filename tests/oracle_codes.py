"""Test helper: compare our VQ-VAE codes with the official oracle's, up to float32 near-ties."""
import torch


def near_tie_mismatches(vqvae, x: torch.Tensor, level: int, ours: torch.Tensor, ref: torch.Tensor, tol: float = 1e-6):
    """Positions where our codes differ from the reference codes at `level`, and how many of them are not float32
    near-ties. The official code and ours both find the nearest code through ||h||² - 2 h·k + ||k||² in float32, so
    when two codes are closer than float32 rounding of those terms (~1e-7 of ||h||² + ||k||²), which one wins
    depends on how the CPU's kernels round the encoder's convolutions. The oracle was recorded on another CPU: its
    codes may differ from ours only at such ties (on the recording machine they matched bit for bit)."""
    with torch.no_grad():
        h = vqvae.encoders[level](x.to(next(vqvae.parameters()).dtype))
        flat = h.permute(0, 2, 1).reshape(-1, h.shape[1]).double()
        k = vqvae.bottleneck.level_blocks[level].k.double()
    ours, ref = ours.flatten(), ref.flatten()
    bad = (ours != ref).nonzero().flatten()
    d = lambda c: ((flat[bad] - k[c[bad]]) ** 2).sum(1)  # exact squared distances
    scale = (flat[bad] ** 2).sum(1) + (k[ref[bad]] ** 2).sum(1)
    real = int(((d(ref) - d(ours)).abs() > tol * scale).sum())
    return len(bad), real


def assert_codes_match_oracle(vqvae, x: torch.Tensor, codes, ref: dict, levels=range(3), max_ties: float = 0.1):
    "Our `codes` per level equal the oracle's `ref[f'vqvae/z{l}']` except at float32 near-ties (at most `max_ties` of them)."
    for l in levels:
        r = ref[f"vqvae/z{l}"]
        assert codes[l].shape == r.shape, f"level {l}: shape {tuple(codes[l].shape)} vs {tuple(r.shape)}"
        n, real = near_tie_mismatches(vqvae, x, l, codes[l], r)
        assert real == 0, f"level {l}: {real} codes differ by more than a float32 near-tie"
        assert n <= max_ties * r.numel(), f"level {l}: {n} of {r.numel()} codes differ (all near-ties, but too many)"
