"""A checker for layers you write yourself: finite differences (float64) and PyTorch autograd.

``check_layer(name, forward, backward, inputs, torch_fn=...)`` runs your
``forward(**inputs) -> (out, cache)`` and ``backward(dout, cache) -> gradients`` and returns a
``Verdict`` that prints PASS, FAIL with what is wrong (which output or gradient, its shape, the
relative error and a likely cause), or "not implemented yet" while the function still raises
``NotImplementedError``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from labutils.gradcheck import numerical_gradient, relative_error

NOT_IMPLEMENTED = "not implemented yet - write it above, then re-run this cell"


@dataclass
class Verdict:
    """The outcome of ``check_layer``: a status, the problems found and the errors measured."""

    layer: str
    status: str = "PASS"                                   # PASS, FAIL or NOT IMPLEMENTED
    problems: list[str] = field(default_factory=list)
    numeric_errors: dict[str, float] = field(default_factory=dict)   # vs finite differences
    torch_errors: dict[str, float] = field(default_factory=dict)     # vs PyTorch autograd

    @property
    def passed(self) -> bool:
        return self.status == "PASS"

    def fail(self, message: str) -> None:
        self.status, self.problems = "FAIL", [*self.problems, message]

    def __str__(self) -> str:
        if self.status == "NOT IMPLEMENTED":
            return f"{self.layer}: {NOT_IMPLEMENTED}"
        if self.passed:
            return f"{self.layer}: PASS"
        return "\n".join([f"{self.layer}: FAIL", *(f"  - {p}" for p in self.problems)])

    def details(self) -> str:
        """The relative errors, one line per array (they vary in the last digits by machine)."""
        lines = [f"  {name:<8} finite differences {err:.1e}" for name, err in
                 self.numeric_errors.items()]
        lines += [f"  {name:<8} PyTorch            {err:.1e}" for name, err in
                  self.torch_errors.items()]
        return "\n".join(lines)


def _diagnose(name: str, mine: np.ndarray, ref: np.ndarray, err: float, tol: float,
              against: str) -> str:
    """A message for a mismatch, naming a likely cause when the pattern is recognisable."""
    message = f"{name}: relative error {err:.1e} against {against} (limit {tol:.0e})"
    if relative_error(-mine, ref) < tol:
        return message + "; it has the wrong sign"
    scale = float(np.sum(mine * ref) / np.sum(ref * ref)) if np.any(ref) else 0.0
    if scale and relative_error(mine, scale * ref) < tol:
        return message + f"; it is {scale:.3g} times the right answer (a missing or extra factor)"
    i = np.unravel_index(np.argmax(np.abs(mine - ref)), ref.shape)
    return message + f"; largest difference at index {tuple(int(j) for j in i)}: " \
                     f"{mine[i]:.4g} instead of {ref[i]:.4g}"


def _shape_problem(name: str, got: tuple, expected: tuple, input_name: str) -> str:
    message = f"{name} has shape {got} but {input_name} has shape {expected}"
    if len(got) == len(expected) + 1 and got[1:] == expected:
        return message + ": did you forget to sum over the batch (axis 0)?"
    if got == expected[::-1]:
        return message + ": it looks transposed"
    return message + ": a gradient has the shape of what it differentiates"


def check_layer(name: str, forward: Callable[..., tuple], backward: Callable,
                inputs: dict[str, np.ndarray], *, torch_fn: Callable | None = None,
                tol: float = 1e-7, seed: int = 2024) -> Verdict:
    """Check ``forward``/``backward`` on float64 copies of ``inputs``.

    ``forward(**inputs) -> (out, cache)``; ``backward(dout, cache)`` returns one gradient per
    input, in the order of ``inputs`` (a single array when there is one). ``torch_fn(**tensors)``
    computes the same output in PyTorch; its output and autograd gradients are the second
    reference. Both comparisons use the relative error of ``gradcheck.relative_error``. The
    random ``dout`` has its own seed: drawn from the same seed as ``inputs`` it could be
    (nearly) parallel to them, and some true gradients would then vanish.
    """
    verdict = Verdict(name)
    inputs = {k: np.array(v, dtype=np.float64) for k, v in inputs.items()}
    originals = {k: v.copy() for k, v in inputs.items()}
    try:
        result = forward(**inputs)
    except NotImplementedError:
        verdict.status = "NOT IMPLEMENTED"
        return verdict
    except Exception as exc:  # report a student's error instead of stopping the notebook
        verdict.fail(f"forward raised {type(exc).__name__}: {exc}")
        return verdict
    if not (isinstance(result, tuple) and len(result) == 2):
        verdict.fail("forward must return a pair (out, cache)")
        return verdict
    out, cache = result
    out = np.asarray(out)
    for k in inputs:
        if not np.array_equal(inputs[k], originals[k]):
            verdict.fail(f"forward modified its input {k} in place; work on a copy")
            inputs[k] = originals[k].copy()

    reference, tensors = None, {}
    if torch_fn is not None:
        tensors = {k: torch.tensor(v, requires_grad=True) for k, v in inputs.items()}
        reference = torch_fn(**tensors)
        ref_out = reference.detach().numpy()
        if out.shape != ref_out.shape:
            verdict.fail(f"output has shape {out.shape}, PyTorch's has {ref_out.shape}")
            return verdict
        err = relative_error(out, ref_out)
        verdict.torch_errors["out"] = err
        if err > tol:
            verdict.fail(_diagnose("output", out, ref_out, err, tol, "PyTorch"))

    dout = np.random.default_rng(seed).standard_normal(out.shape)
    try:
        grads = backward(dout.copy(), cache)
    except NotImplementedError:
        verdict.status = "NOT IMPLEMENTED"
        return verdict
    except Exception as exc:
        verdict.fail(f"backward raised {type(exc).__name__}: {exc}")
        return verdict
    grads = grads if isinstance(grads, tuple) else (grads,)
    if len(grads) != len(inputs):
        verdict.fail(f"backward returned {len(grads)} gradient(s); expected {len(inputs)}, one "
                     f"per input ({', '.join('d' + k for k in inputs)}), in that order")
        return verdict
    if reference is not None:
        reference.backward(torch.from_numpy(dout))

    for (k, x), grad in zip(inputs.items(), grads):
        gname, grad = f"d{k}", np.asarray(grad)
        if grad.shape != x.shape:
            verdict.fail(_shape_problem(gname, grad.shape, x.shape, k))
            continue
        if not np.isfinite(grad).all():
            verdict.fail(f"{gname} contains NaN or inf")
            continue
        numeric = numerical_gradient(
            lambda _: float(np.sum(np.asarray(forward(**inputs)[0]) * dout)), x)
        err = relative_error(grad, numeric)
        verdict.numeric_errors[gname] = err
        if err > tol:
            verdict.fail(_diagnose(gname, grad, numeric, err, tol, "finite differences"))
        if reference is not None:
            ref_grad = tensors[k].grad
            ref_grad = np.zeros_like(x) if ref_grad is None else ref_grad.numpy()
            err = relative_error(grad, ref_grad)
            verdict.torch_errors[gname] = err
            if err > tol and verdict.numeric_errors[gname] <= tol:
                verdict.fail(_diagnose(gname, grad, ref_grad, err, tol, "PyTorch"))
    return verdict
