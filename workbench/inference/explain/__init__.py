"""Why did the model say that? Model-agnostic saliency for classifiers, uncertainty for segmenters.

    gen = explain(engine, image, method="rise", target="noisy", n_masks=500, seed=0)
    for done, total, message in gen: ...       # progress; cancel via a threading.Event
    expl = run_explain(engine, image, method="occlusion")   # the same, drained

Methods: ``occlusion`` and ``rise`` (classification plugins: perturb the model input, watch the class
score -- no gradients, no change to the model), ``entropy``, ``margin`` and ``tta`` (segmentation
plugins: from the plugin's own probabilities / flipped runs). One slice at a time; the map is returned
in the image geometry of that slice (see :class:`Explanation`). The GUI runs the generator in a worker,
``workbench explain`` drains it.
"""
from __future__ import annotations

from typing import Any, Callable, Generator

from ...core.image import ImageVolume
from ...core.results import RunInfo
from ._common import Cancel, Cost, ExplainError, Explanation, Progress, peak_of, whole_tensor
from .gradcam import gradcam
from .occlusion import occlusion
from .rise import rise
from .uncertainty import uncertainty

SALIENCY_METHODS = ("occlusion", "rise", "gradcam")
UNCERTAINTY_METHODS = ("entropy", "margin", "tta")
METHODS = SALIENCY_METHODS + UNCERTAINTY_METHODS

__all__ = ["METHODS", "SALIENCY_METHODS", "UNCERTAINTY_METHODS", "Cost", "ExplainError", "Explanation",
           "default_method", "explain", "gradcam", "methods_for", "occlusion", "peak_of", "rise", "run_explain",
           "uncertainty"]


def default_method(task: str) -> str:
    """The method used when none is given: RISE for classifiers, entropy for segmenters."""
    return "rise" if task == "classification" else "entropy"


def methods_for(spec: Any) -> tuple[str, ...]:
    """The methods a plugin supports (Grad-CAM only where it declares ``explain:``)."""
    if spec.task == "classification":
        return SALIENCY_METHODS if spec.explain is not None else ("occlusion", "rise")
    if spec.task == "segmentation":
        return UNCERTAINTY_METHODS
    return ()


def check_method(spec: Any, method: str) -> None:
    """Refuse a method the plugin's task cannot support, with a one-line reason."""
    if method not in METHODS:
        raise ExplainError(f"--method {method}: expected one of {', '.join(METHODS)}")
    if spec.task == "classification" and method not in SALIENCY_METHODS:
        raise ExplainError(f"--method {method}: {spec.id} is a classification plugin; use occlusion or rise")
    if method == "gradcam" and spec.explain is None:
        raise ExplainError(f"--method gradcam: {spec.id} declares no feature map and class weights "
                           "(explain: in plugin.yaml); use occlusion or rise")
    if spec.task == "segmentation" and method not in UNCERTAINTY_METHODS:
        raise ExplainError(f"--method {method}: {spec.id} is a segmentation plugin; use entropy, margin or tta")
    if spec.task not in ("classification", "segmentation"):
        raise ExplainError(f"{spec.id}: explanations exist for classification and segmentation plugins, "
                           f"not {spec.task}")


def explain(plugin: Any, image: ImageVolume, *, method: str | None = None, slice_index: int | None = None,
            target: str | int | None = None, cancel: Cancel = None, provider: str = "auto",
            settings: Any = None, **params: Any) -> Generator[Progress, None, Explanation]:
    """Explain one slice of ``image`` with a plugin.

    Parameters
    ----------
    plugin : str, Path, PluginSpec or Engine
    image : ImageVolume
    method : {"occlusion", "rise", "entropy", "margin", "tta"}, optional
        Default: :func:`default_method` of the plugin's task.
    slice_index : int, optional
        Default: the middle slice (slice 0 of a 2-D image).
    target : str or int, optional
        Classification: the class to explain (default: the top class).
    cancel : threading.Event or callable, optional
    **params
        Method parameters (``window``, ``stride``, ``baseline``, ``n_masks``, ``seed``, ``cells``, ``p``,
        ``flips``, ``threshold``, ``batch_size``...), see the methods.

    Yields
    ------
    (done, total, message)

    Returns
    -------
    Explanation

    Raises
    ------
    ExplainError
        Method not valid for the plugin's task, unknown class, bad parameter.
    CancelledError, InferenceError
    """
    from ..run import Engine

    engine = plugin if isinstance(plugin, Engine) else Engine(plugin, provider=provider, settings=settings)
    spec = engine.spec
    method = method or default_method(spec.task)
    check_method(spec, method)
    if target not in (None, "") and spec.task != "classification":
        raise ExplainError(f"--class {target}: a class is chosen only for classification plugins")
    index = image.n_slices // 2 if slice_index is None else int(slice_index)
    engine.check_slices(image, [index])
    plane = engine.prepare_plane(image, index)
    whole_tensor(plane, spec.id)
    if method == "occlusion":
        expl = yield from occlusion(engine, plane, target=target, cancel=cancel, **params)
    elif method == "rise":
        expl = yield from rise(engine, plane, target=target, cancel=cancel, **params)
    elif method == "gradcam":
        expl = yield from gradcam(engine, plane, target=target, cancel=cancel, **params)
    else:
        expl = yield from uncertainty(engine, image, plane, method=method, cancel=cancel, **params)
    expl.info = RunInfo(plugin_id=spec.id, plugin_name=spec.name, plugin_version=spec.version, sha256=spec.sha256,
                        provider=engine.provider, task=spec.task, timing_ms={"explain": round(expl.cost.ms, 3)},
                        slice_indices=[index])
    return expl


def run_explain(plugin: Any, image: ImageVolume, *, progress: Callable[[int, int, str], None] | None = None,
                **kwargs: Any) -> Explanation:
    """:func:`explain`, drained (``progress`` is called for every step)."""
    gen = explain(plugin, image, **kwargs)
    while True:
        try:
            step = next(gen)
        except StopIteration as stop:
            return stop.value
        if progress is not None:
            progress(*step)
