"""Peak training-step memory measured on the CPU: the profiler's allocation events, checked
against what autograd demonstrably holds (saved tensors) and against the batch size."""

import torch
import torch.nn.functional as F

from spaces.build import build_model
from spaces.registry import get_model
from trials.timing.memory import _live_before, measure_step_memory
from trials.timing.protocol import TimingProtocol
from trials.timing.step_time import time_model


def _saved_bytes(model, x, y) -> int:
    """Bytes of the distinct storages autograd saves for backward in one forward pass,
    other than the weights (which every conv saves too) and the input."""
    weights = {t.untyped_storage().data_ptr() for t in (*model.parameters(), x)}
    storages = {}

    def pack(t):
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = F.cross_entropy(model(x), y)
    loss.backward()
    model.zero_grad(set_to_none=True)
    return sum(v for k, v in storages.items() if k not in weights)


def test_peak_covers_saved_activations_and_grows_with_the_batch():
    torch.manual_seed(0)
    spec = get_model("RegNetY-200MF").replace(resolution=32, num_classes=10)
    model = build_model(spec)
    cpu = torch.device("cpu")
    peaks, saved = {}, {}
    for batch in (2, 4, 8):
        x, y = torch.randn(batch, 3, 32, 32), torch.randint(0, 10, (batch,))
        peaks[batch] = measure_step_memory(model, x, y, cpu)
        saved[batch] = _saved_bytes(model, x, y)
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        opt.step()  # (no grads: creates no state) the measured step builds its own optimizer
        persistent = _live_before(model, opt, (x, y))
        params = sum(p.numel() * 4 for p in model.parameters())
        # at the end of the forward pass everything saved for backward is held at once
        assert peaks[batch] >= persistent + saved[batch]
        assert peaks[batch] < persistent + 3 * params + 3 * saved[batch]
    # the per-image part is linear in the batch (activations), the rest is fixed
    step_24, step_48 = peaks[4] - peaks[2], peaks[8] - peaks[4]
    assert step_24 > 0 and abs(step_48 - 2 * step_24) <= 0.1 * step_48


def test_time_model_reports_memory_and_keeps_the_model_state():
    spec = get_model("RegNetX-200MF").with_resolution(16)
    torch.manual_seed(0)
    model = build_model(spec)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    r = time_model(
        spec,
        batch_size=2,
        protocol=TimingProtocol(steps=1, rounds=1, min_warmup=0, max_warmup=0),
        threads=1,
        model=model,
        memory=True,
    )
    assert r["memory_bytes"] > sum(p.numel() * 4 for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
