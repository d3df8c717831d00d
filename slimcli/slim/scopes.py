"""arg_scope and variable/name scopes, TF-Slim style, without TF1 globals.

Two kinds of state live in `contextvars` (so they follow the Python call
stack, `tf.function` tracing included, and never leak between threads):

* the arg-scope stack: `{op key: default kwargs}` set by `arg_scope`;
* the scope stack of the model call in progress: which variable store is
  active, the full variable-scope name (`InceptionV3/Conv2d_1a_3x3`), the
  op name scope, and the counters that make default names unique
  (`Conv`, `Conv_1`, ...). Counters live in a `CallContext` made afresh for
  every model call, so every call produces the same names.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import inspect
from typing import Any, Callable, Iterator, Sequence

import tensorflow as tf

from slimcli.errors import SlimError

__all__ = [
    "AUTO_REUSE", "add_arg_scope", "arg_scope", "arg_scoped_arguments", "current_arg_scope",
    "has_arg_scope", "variable_scope", "name_scope", "VariableScope", "current_scope",
    "get_variable_scope",
]

# ----------------------------------------------------------------------------
# arg_scope
# ----------------------------------------------------------------------------

_ARG_SCOPE: contextvars.ContextVar[dict] = contextvars.ContextVar("slim_arg_scope", default={})


def _op_key(op: Callable) -> str | None:
    return getattr(op, "_key_op", None)


def _accepted_kwargs(func: Callable) -> tuple[frozenset, bool, list[str]]:
    """(names a call may pass by keyword, whether **kwargs is taken, positional names)."""
    params = inspect.signature(func).parameters.values()
    names = frozenset(p.name for p in params
                      if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
    var_kw = any(p.kind == p.VAR_KEYWORD for p in params)
    positional = [p.name for p in params
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return names, var_kw, positional


def add_arg_scope(func: Callable) -> Callable:
    """Decorates `func` so that `arg_scope` can supply default keyword arguments.

    Arguments given in the call win over the scope's; a scope's value for an
    argument that the call passes positionally is ignored.
    """
    key = f"{func.__module__}.{func.__qualname__}"
    names, var_kw, positional = _accepted_kwargs(func)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        scoped = _ARG_SCOPE.get().get(key)
        if scoped:
            taken = positional[:len(args)]
            merged = {k: v for k, v in scoped.items() if k not in taken}
            merged.update(kwargs)
            kwargs = merged
        return func(*args, **kwargs)

    wrapper._key_op = key
    wrapper._arg_names = names
    wrapper._takes_var_kwargs = var_kw
    return wrapper


def has_arg_scope(func: Callable) -> bool:
    """True when `func` was decorated with `add_arg_scope`."""
    return _op_key(func) is not None


def arg_scoped_arguments(func: Callable) -> list[str]:
    """The keyword arguments an arg_scope may set for `func`."""
    if not has_arg_scope(func):
        raise SlimError(f"{getattr(func, '__name__', func)!r} is not decorated with "
                        f"@add_arg_scope; decorate it to use it in arg_scope.")
    return sorted(func._arg_names)


def current_arg_scope() -> dict:
    """The active arg scope, a dict `{op key: kwargs}` that `arg_scope` can re-enter."""
    return _ARG_SCOPE.get()


@contextlib.contextmanager
def arg_scope(list_ops_or_scope: Sequence[Callable] | Callable | dict,
              **kwargs: Any) -> Iterator[dict]:
    """Sets default keyword arguments for the listed ops within the block.

    Args:
      list_ops_or_scope: ops decorated with `add_arg_scope` (a list, tuple or a
        single op), or a scope dict previously yielded by `arg_scope` (or
        returned by a net's `*_arg_scope()` function) to re-enter it.
      **kwargs: the defaults; each must be an argument every listed op accepts.

    Yields:
      The new scope dict (re-enter it later with `arg_scope(sc)`).

    Raises:
      SlimError: an op is not decorated, or a kwarg is not accepted by an op.
    """
    if isinstance(list_ops_or_scope, dict):
        if kwargs:
            raise SlimError("arg_scope(scope_dict) re-enters a saved scope and takes no "
                            f"kwargs; got {sorted(kwargs)}. Open a nested arg_scope instead.")
        token = _ARG_SCOPE.set(list_ops_or_scope)
        try:
            yield list_ops_or_scope
        finally:
            _ARG_SCOPE.reset(token)
        return
    ops = list_ops_or_scope if isinstance(list_ops_or_scope, (list, tuple)) else [list_ops_or_scope]
    new_scope = dict(_ARG_SCOPE.get())
    for op in ops:
        key = _op_key(op)
        if key is None:
            raise SlimError(f"arg_scope: {getattr(op, '__name__', op)!r} is not decorated with "
                            f"@add_arg_scope, so arg_scope cannot set its arguments.")
        if not op._takes_var_kwargs:
            bad = sorted(set(kwargs) - op._arg_names)
            if bad:
                raise SlimError(f"arg_scope: {op.__name__} does not accept argument(s) "
                                f"{', '.join(bad)}; it accepts: {', '.join(sorted(op._arg_names))}.")
        new_scope[key] = {**new_scope.get(key, {}), **kwargs}
    token = _ARG_SCOPE.set(new_scope)
    try:
        yield new_scope
    finally:
        _ARG_SCOPE.reset(token)


# ----------------------------------------------------------------------------
# Variable and name scopes
# ----------------------------------------------------------------------------


class _AutoReuse:
    def __repr__(self) -> str:
        return "AUTO_REUSE"


AUTO_REUSE = _AutoReuse()


def _is_auto_reuse(reuse: Any) -> bool:
    return reuse is AUTO_REUSE or reuse is tf.compat.v1.AUTO_REUSE


@dataclasses.dataclass
class CallContext:
    """State of one model call: the store and the name counters."""
    store: Any
    op_prefix: str = ""  # tf name scope that was active when the call began
    var_counts: dict = dataclasses.field(default_factory=dict)
    op_counts: dict = dataclasses.field(default_factory=dict)
    collections: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class VariableScope:
    """A variable scope: `name` prefixes variable names, `op_scope` op names.

    `original_name_scope` is the op scope the scope was first opened with, with
    a trailing slash, as TF1 had it (a re-entered scope keeps its first one).
    """
    name: str
    op_scope: str
    reuse: Any = None
    first_op_scope: str | None = None

    @property
    def original_name_scope(self) -> str:
        scope = self.op_scope if self.first_op_scope is None else self.first_op_scope
        return f"{scope}/" if scope else ""


@dataclasses.dataclass(frozen=True)
class _Frame:
    context: CallContext
    scope: VariableScope


_FRAME: contextvars.ContextVar[_Frame | None] = contextvars.ContextVar("slim_scope_frame",
                                                                      default=None)


def current_frame() -> _Frame:
    frame = _FRAME.get()
    if frame is None:
        raise SlimError(
            "no variable store is active: slim layers create their variables in a store. Call the "
            "net through a slimcli.slim.Model (model = slim.Model(net_fn); model(images)) or inside "
            "`with store.scope():` of a slimcli.slim.VariableStore.")
    return frame


def current_scope() -> VariableScope:
    """The innermost variable scope of the active model call."""
    return current_frame().scope


get_variable_scope = current_scope


def current_context() -> CallContext | None:
    frame = _FRAME.get()
    return frame.context if frame else None


def _join(prefix: str, name: str) -> str:
    return f"{prefix}/{name}" if prefix else name


def _unique(counts: dict, full: str) -> str:
    """TF1's rule: the first free of `full`, `full_1`, `full_2`, ..."""
    if counts.get(full, 0) == 0:
        return full
    i = 1
    while counts.get(f"{full}_{i}", 0):
        i += 1
    return f"{full}_{i}"


def _tf_name_scope(context: CallContext, op_scope: str):
    """Enters the absolute TensorFlow name scope for `op_scope`."""
    if tf.executing_eagerly():
        return contextlib.nullcontext()
    return tf.name_scope(_join(context.op_prefix, op_scope) + "/")


@contextlib.contextmanager
def call_context(context: CallContext) -> Iterator[CallContext]:
    """Makes `context` the active call with an empty root scope."""
    root = VariableScope(name="", op_scope="")
    token = _FRAME.set(_Frame(context, root))
    try:
        yield context
    finally:
        _FRAME.reset(token)


@contextlib.contextmanager
def variable_scope(name_or_scope: str | VariableScope | None = None,
                   default_name: str | None = None, values: Any = None,
                   reuse: Any = None) -> Iterator[VariableScope]:
    """Opens a variable scope, with TF1's naming rules.

    Args:
      name_or_scope: a name relative to the current scope, or a
        `VariableScope` to re-enter (absolute), or None to use `default_name`.
      default_name: used when `name_or_scope` is None, made unique in its
        parent (`Conv`, `Conv_1`, ...).
      values: ignored (kept for TF-Slim call compatibility).
      reuse: True to reuse existing variables, `AUTO_REUSE` to create or
        reuse, None to inherit. Reuse is inherited by nested scopes.

    Yields:
      The `VariableScope`.
    """
    del values
    frame = current_frame()
    parent, ctx = frame.scope, frame.context
    first_op_scope = None
    if isinstance(name_or_scope, VariableScope):
        var_name = name_or_scope.name
        if reuse is None:
            reuse = name_or_scope.reuse
        # Re-entered: TF1 opens a new name scope named after the scope's last component
        # inside the current one (`MobilenetV1/MobilenetV1/...`), and keeps its first one.
        op_base = _join(parent.op_scope, var_name.rsplit("/", 1)[-1])
        first_op_scope = name_or_scope.original_name_scope.rstrip("/")
    elif name_or_scope is not None:
        var_name = _join(parent.name, name_or_scope)
        op_base = _join(parent.op_scope, name_or_scope)
    elif default_name is not None:
        var_name = _unique(ctx.var_counts, _join(parent.name, default_name))
        op_base = _join(parent.op_scope, var_name.rsplit("/", 1)[-1])
    else:
        raise SlimError("variable_scope needs name_or_scope or default_name; got neither.")
    ctx.var_counts[var_name] = ctx.var_counts.get(var_name, 0) + 1
    op_scope = _unique(ctx.op_counts, op_base)
    ctx.op_counts[op_scope] = ctx.op_counts.get(op_scope, 0) + 1
    if parent.reuse is True:
        reuse = True  # reuse, once on, stays on in nested scopes (TF1's rule)
    elif reuse is None:
        reuse = parent.reuse
    scope = VariableScope(name=var_name, op_scope=op_scope, reuse=reuse,
                          first_op_scope=first_op_scope)
    saved_counts = dict(ctx.var_counts) if first_op_scope is not None else None
    token = _FRAME.set(_Frame(ctx, scope))
    try:
        with _tf_name_scope(ctx, op_scope):
            yield scope
    finally:
        _FRAME.reset(token)
        _close_subscopes(ctx, var_name, saved_counts)


def _close_subscopes(ctx: CallContext, var_name: str, saved_counts: dict | None) -> None:
    """TF1's rule on leaving a variable scope: default names restart inside it.

    Leaving a scope opened by name zeroes the counters of its sub-scopes, so a
    second build of the same scope (reuse=True) names its `Conv`, `BatchNorm`,
    ... exactly as the first; leaving a re-entered scope object restores the
    counters it found.
    """
    if saved_counts is not None:
        ctx.var_counts.clear()
        ctx.var_counts.update(saved_counts)
        return
    prefix = f"{var_name}/"
    for key in ctx.var_counts:
        if key.startswith(prefix):
            ctx.var_counts[key] = 0


@contextlib.contextmanager
def name_scope(name: str | None, default_name: str | None = None,
               values: Any = None) -> Iterator[str]:
    """Opens an op name scope (no variables): yields its full name, unique in the call.

    Layers without variables (pooling, dropout, flatten) use this; their
    end-point alias is this name, as in TF-Slim. A name ending in `/` (a scope's
    `original_name_scope`) reopens that op scope of the call as it is, as TF1 did.
    """
    del values
    frame = current_frame()
    parent, ctx = frame.scope, frame.context
    if name is not None and name.endswith("/"):
        op_scope = name.rstrip("/")
    else:
        base = _join(parent.op_scope, name if name is not None else default_name)
        op_scope = _unique(ctx.op_counts, base)
    ctx.op_counts[op_scope] = ctx.op_counts.get(op_scope, 0) + 1
    scope = VariableScope(name=parent.name, op_scope=op_scope, reuse=parent.reuse)
    token = _FRAME.set(_Frame(ctx, scope))
    try:
        with _tf_name_scope(ctx, op_scope):
            yield op_scope
    finally:
        _FRAME.reset(token)


def is_auto_reuse(reuse: Any) -> bool:
    """True for slim's or TensorFlow's AUTO_REUSE."""
    return _is_auto_reuse(reuse)
