"""Variables that live in a store owned by the model object.

TF-Slim kept variables in graph collections. Here a `VariableStore` (a
`tf.Module`) owns them by their full TF1 name (`vgg_16/conv1/conv1_1/weights`).
Layers ask the active store for a variable by scope-relative name: the store
creates it while the model is being built (the first call) and hands back the
same variable on every later call. Variables are created under
`tf.init_scope()`, so the first call may be traced by `tf.function`, and under
whatever distribution strategy scope is active (MirroredVariable and friends).
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import tensorflow as tf

from slimcli.errors import SlimError
from slimcli.slim import scopes

__all__ = [
    "GLOBAL_VARIABLES", "MODEL_VARIABLES", "TRAINABLE_VARIABLES", "VariableStore", "Model",
    "variable", "model_variable", "add_model_variable", "local_variable", "get_variables",
    "get_model_variables", "get_trainable_variables", "get_variables_to_restore",
    "get_variables_by_name", "get_variables_by_suffix", "get_unique_variable",
    "get_variable_full_name", "active_store", "get_global_step", "create_global_step",
    "get_or_create_global_step", "scope_matcher", "add_store_listener",
]

GLOBAL_VARIABLES = "variables"
MODEL_VARIABLES = "model_variables"
TRAINABLE_VARIABLES = "trainable_variables"
LOCAL_VARIABLES = "local_variables"


_STORE_LISTENERS: list[Callable[["VariableStore"], None]] = []


def add_store_listener(listener: Callable[["VariableStore"], None]) -> None:
    """Calls `listener(store)` whenever a store becomes active (how `slim.losses`
    learns which models a loss collection used, without this module importing it)."""
    if listener not in _STORE_LISTENERS:
        _STORE_LISTENERS.append(listener)


@dataclasses.dataclass
class _Entry:
    variable: tf.Variable
    collections: set
    regularizer: Callable | None


def _initial_value(initializer: Any, shape: Sequence[int] | None, dtype: tf.DType):
    """A callable giving the initial value, whatever form `initializer` takes."""
    if initializer is None:
        if dtype.is_floating:
            from slimcli.slim.initializers import xavier_initializer
            initializer = xavier_initializer()
        else:
            initializer = tf.zeros_initializer()
    if callable(initializer):
        if shape is None:
            raise SlimError("a variable with an initializer function needs a shape.")
        return lambda: initializer(list(shape), dtype=dtype)
    value = tf.convert_to_tensor(np.asarray(initializer), dtype=dtype)
    if shape is not None and value.shape != tf.TensorShape(shape):
        raise SlimError(f"initial value of shape {value.shape} does not match shape {list(shape)}.")
    return lambda: value


class VariableStore(tf.Module):
    """Owns a model's variables by full name; creates them once, then reuses them.

    Use `with store.scope():` to make it the store that layers and
    `slim.variable` use. A store is *open* (may create variables) until
    `store.built` is set; `Model` sets it after its first call.
    """

    def __init__(self, name: str | None = None):
        super().__init__(name=name)
        self._vars: dict[str, tf.Variable] = {}
        self._entries: dict[str, _Entry] = {}
        self.built = False
        self.global_step: tf.Variable | None = None  # see get_or_create_global_step

    # -- scope -----------------------------------------------------------------
    @contextlib.contextmanager
    def scope(self) -> Iterator["VariableStore"]:
        """Makes this the active store, with fresh default-name counters."""
        op_prefix = "" if tf.executing_eagerly() else tf.compat.v1.get_default_graph().get_name_scope()
        context = scopes.CallContext(store=self, op_prefix=op_prefix)
        for listener in _STORE_LISTENERS:
            listener(self)
        created_before = set(self._vars)
        try:
            with scopes.call_context(context):
                yield self
        except BaseException:
            if not self.built:  # a failed first call leaves nothing half-built
                for name in set(self._vars) - created_before:
                    del self._vars[name]
                    del self._entries[name]
            raise

    # -- creation and lookup ------------------------------------------------------
    def get_or_create(self, name: str, shape, dtype, initializer, regularizer, trainable: bool,
                      collections: Sequence[str], synchronization, aggregation,
                      reuse: Any) -> tf.Variable:
        """Returns the variable `name`, creating it while the store is open."""
        if name in self._vars:
            if not (self.built or reuse is True or scopes.is_auto_reuse(reuse)):
                raise SlimError(f"variable {name} already exists; use another scope name, or "
                                f"pass reuse=True (or AUTO_REUSE) to variable_scope to share it.")
            existing = self._vars[name]
            if shape is not None and existing.shape != tf.TensorShape(shape):
                raise SlimError(f"variable {name} exists with shape {existing.shape.as_list()}, "
                                f"but shape {list(shape)} was asked for.")
            return existing
        if self.built:
            raise SlimError(f"variable {name} does not exist and the model is already built: "
                            f"variables are created only on the model's first call. Build the "
                            f"model in the mode that creates every variable (e.g. is_training=True).")
        if reuse is True:
            raise SlimError(f"variable {name} does not exist, but its scope has reuse=True; "
                            f"create it first or use reuse=AUTO_REUSE.")
        dtype = tf.as_dtype(dtype)
        init = _initial_value(initializer, shape, dtype)
        # The root name scope makes a graph's variable node `name` itself (the checkpoint key).
        with tf.init_scope(), tf.name_scope(""):
            var = tf.Variable(init, name=name, dtype=dtype, trainable=trainable,
                              synchronization=synchronization, aggregation=aggregation)
        cols = {GLOBAL_VARIABLES, *collections}
        if trainable:
            cols.add(TRAINABLE_VARIABLES)
        self._vars[name] = var
        self._entries[name] = _Entry(var, cols, regularizer)
        return var

    def add_existing(self, name: str, var: tf.Variable, collections: Sequence[str] = (),
                     regularizer: Callable | None = None) -> None:
        """Registers a variable made elsewhere under `name`."""
        if name in self._vars:
            raise SlimError(f"variable {name} is already in the store.")
        cols = {GLOBAL_VARIABLES, *collections}
        if var.trainable:
            cols.add(TRAINABLE_VARIABLES)
        self._vars[name] = var
        self._entries[name] = _Entry(var, cols, regularizer)

    def add_to_collection(self, name: str, collection: str) -> None:
        self._entries[name].collections.add(collection)

    # -- queries ----------------------------------------------------------------
    def names(self, collection: str = GLOBAL_VARIABLES) -> list[str]:
        """Names of the variables in `collection`, in creation order."""
        return [n for n, e in self._entries.items() if collection in e.collections]

    def get(self, name: str) -> tf.Variable:
        try:
            return self._vars[name]
        except KeyError:
            raise SlimError(f"no variable named {name!r} in the store") from None

    def name_of(self, var: Any) -> str:
        """The store name of `var` (a variable of this store)."""
        for name, v in self._vars.items():
            if v is var:
                return name
        return strip_name(var.name)

    def regularizers(self) -> list[tuple[str, tf.Variable, Callable]]:
        return [(n, e.variable, e.regularizer) for n, e in self._entries.items()
                if e.regularizer is not None]

    def as_dict(self, collection: str = GLOBAL_VARIABLES) -> dict[str, tf.Variable]:
        return {n: self._vars[n] for n in self.names(collection)}

    def __contains__(self, name: str) -> bool:
        return name in self._vars

    def __len__(self) -> int:
        return len(self._vars)


def strip_name(name: str) -> str:
    """`a/b:0` → `a/b`; replica suffixes of mirrored copies are dropped too."""
    name = re.sub(r":\d+$", "", name)
    return re.sub(r"/replica_\d+$", "", name)


class Model(tf.Module):
    """A net function plus the store of its variables.

    `model(images, **kwargs)` runs `fn(images, **fixed_kwargs, **kwargs)` with
    this model's store active: the first call creates the variables (in eager
    mode, in a `tf.function` trace, or under a distribution strategy's scope),
    later calls reuse them.
    """

    def __init__(self, fn: Callable, name: str | None = None, **fixed_kwargs: Any):
        super().__init__(name=name)
        self._fn = fn
        self._fixed_kwargs = fixed_kwargs
        self.store = VariableStore(name=f"{self.name}_store")

    def __call__(self, *args: Any, **kwargs: Any):
        with self.store.scope():
            result = self._fn(*args, **{**self._fixed_kwargs, **kwargs})
        self.store.built = True
        return result

    def build(self, input_shape: Sequence[int | None], dtype=tf.float32, **kwargs: Any) -> None:
        """Creates the variables by tracing one call symbolically (no compute)."""
        if self.store.built:
            return
        spec = tf.TensorSpec(list(input_shape), dtype)
        tf.function(lambda x: self(x, **kwargs), autograph=False).get_concrete_function(spec)

    @property
    def built(self) -> bool:
        return self.store.built

    def scope(self):
        """`with model.scope():` makes the model's store active (see VariableStore.scope)."""
        return self.store.scope()

    def variables_dict(self, collection: str = GLOBAL_VARIABLES) -> dict[str, tf.Variable]:
        """`{full name: variable}` in creation order."""
        return self.store.as_dict(collection)


def _store(store: Any = None) -> VariableStore:
    if store is None:
        return active_store()
    if isinstance(store, Model):
        return store.store
    if isinstance(store, VariableStore):
        return store
    raise SlimError(f"expected a slim.Model or slim.VariableStore, got {type(store).__name__}.")


def active_store() -> VariableStore:
    """The store of the model call (or `store.scope()` block) in progress."""
    return scopes.current_frame().context.store


def get_variable_full_name(name: str) -> str:
    """`name` prefixed with the current variable scope."""
    scope = scopes.current_scope().name
    return f"{scope}/{name}" if scope else name


def variable(name: str, shape: Sequence[int] | None = None, dtype=tf.float32,
             initializer: Any = None, regularizer: Callable | None = None,
             trainable: bool = True, collections: Sequence[str] | None = None,
             caching_device: Any = None, device: Any = None, partitioner: Any = None,
             custom_getter: Any = None, use_resource: Any = None,
             synchronization=tf.VariableSynchronization.AUTO,
             aggregation=tf.VariableAggregation.NONE) -> tf.Variable:
    """Gets or creates a variable named `<current scope>/<name>` in the active store.

    Args:
      name: the name relative to the current variable scope.
      shape: the shape (needed with an initializer function).
      dtype: the dtype (float32).
      initializer: a callable `(shape, dtype)`, a value, or None (Glorot uniform).
      regularizer: `fn(variable) -> scalar`, collected as a regularization loss.
      trainable: whether optimizers train it.
      collections: extra collection names to tag it with.
      caching_device, device, partitioner, custom_getter, use_resource: accepted
        for TF-Slim compatibility; placement is the distribution strategy's job.
      synchronization, aggregation: as for `tf.Variable`.

    Returns:
      The `tf.Variable`.
    """
    del caching_device, device, use_resource
    if partitioner is not None or custom_getter is not None:
        raise SlimError(f"variable {name}: partitioner/custom_getter are not supported in slimcli; "
                        f"use a tf.distribute strategy for sharding.")
    scope = scopes.current_scope()
    full = get_variable_full_name(name)
    return active_store().get_or_create(full, shape, dtype, initializer, regularizer, trainable,
                                        list(collections or ()), synchronization, aggregation,
                                        scope.reuse)


def model_variable(name: str, shape: Sequence[int] | None = None, dtype=tf.float32,
                   initializer: Any = None, regularizer: Callable | None = None,
                   trainable: bool = True, collections: Sequence[str] | None = None,
                   caching_device: Any = None, device: Any = None, partitioner: Any = None,
                   custom_getter: Any = None, use_resource: Any = None,
                   synchronization=tf.VariableSynchronization.AUTO,
                   aggregation=tf.VariableAggregation.NONE) -> tf.Variable:
    """Like `variable`, and also tags it as a model variable (saved and restored)."""
    cols = [MODEL_VARIABLES, *(collections or ())]
    return variable(name, shape, dtype, initializer, regularizer, trainable, cols, caching_device,
                    device, partitioner, custom_getter, use_resource, synchronization, aggregation)


def local_variable(initial_value: Any, name: str = "local", dtype=None) -> tf.Variable:
    """A non-trainable variable in the local-variables collection."""
    value = tf.convert_to_tensor(initial_value, dtype=dtype)
    return variable(name, value.shape.as_list(), value.dtype, initializer=value, trainable=False,
                    collections=[LOCAL_VARIABLES])


def add_model_variable(var: tf.Variable, store: Any = None) -> None:
    """Tags a variable of the store as a model variable (adds it under its name if new)."""
    st = _store(store)
    name = st.name_of(var)
    if name in st:
        st.add_to_collection(name, MODEL_VARIABLES)
    else:
        st.add_existing(name, var, [MODEL_VARIABLES])


def scope_matcher(scope: str | None, what: str = "scope") -> Callable[[str], bool]:
    """`name -> bool`: TF-Slim's scope filter, a regular expression matched at the
    start of the name (`re.match`, as `tf.get_collection(key, scope)` did).

    A plain scope name (`vgg_16/fc8`) matches the names under it, as before;
    `.*fc8` or `conv[12]` work as TF-Slim users wrote them.

    Raises:
      SlimError: `scope` is not a valid regular expression.
    """
    if scope is None:
        return lambda name: True
    try:
        pattern = re.compile(scope)
    except re.error as e:
        raise SlimError(f"{what} {scope!r} is not a valid regular expression ({e}); escape "
                        f"special characters with re.escape().") from None
    return lambda name: pattern.match(name) is not None


def _matches_scope(name: str, scope: str | None) -> bool:
    return scope_matcher(scope)(name)


def get_variables(scope: str | None = None, suffix: str | None = None,
                  collection: str = GLOBAL_VARIABLES, store: Any = None) -> list[tf.Variable]:
    """Variables whose full name matches `scope` at its start and ends with `suffix`.

    Args:
      scope: a regular expression matched at the start of the name
        (`re.match`, as TF-Slim): a scope such as `vgg_16/fc8`, or
        `.*/weights`; None for all.
      suffix: a name suffix (`weights`), or None.
      collection: `variables` (all), `model_variables`, `trainable_variables`,
        `local_variables` or a custom collection name.
      store: a Model or VariableStore; the active one when None.
    """
    st = _store(store)
    names = [n for n in st.names(collection) if _matches_scope(n, scope)
             and (suffix is None or n.endswith(suffix))]
    return [st.get(n) for n in names]


def get_model_variables(scope: str | None = None, suffix: str | None = None,
                        store: Any = None) -> list[tf.Variable]:
    return get_variables(scope, suffix, MODEL_VARIABLES, store)


def get_trainable_variables(scope: str | None = None, suffix: str | None = None,
                            store: Any = None) -> list[tf.Variable]:
    return get_variables(scope, suffix, TRAINABLE_VARIABLES, store)


def get_variables_to_restore(include: Sequence[str] | None = None,
                             exclude: Sequence[str] | None = None,
                             store: Any = None) -> list[tf.Variable]:
    """Variables matching any `include` scope (all when None) and no `exclude` scope.

    Scopes are regular expressions matched at the start of the name
    (`re.match`), as TF-Slim's `tf.get_collection(key, scope)` matched them:
    `exclude=['.*fc8']` drops every `fc8` variable, `include=['conv[12]']`
    keeps `conv1/...` and `conv2/...`; a plain scope name matches what is under it.
    """
    st = _store(store)
    names = st.names(GLOBAL_VARIABLES)
    if isinstance(include, str) or isinstance(exclude, str):
        raise SlimError(f"get_variables_to_restore: include/exclude are lists of scopes; got a "
                        f"string ({include if isinstance(include, str) else exclude!r}): "
                        f"wrap it in a list.")
    if include is not None:
        keep = [scope_matcher(s, "include scope") for s in include]
        names = [n for n in names if any(m(n) for m in keep)]
    if exclude:
        drop = [scope_matcher(s, "exclude scope") for s in exclude]
        names = [n for n in names if not any(m(n) for m in drop)]
    return [st.get(n) for n in names]


def get_variables_by_suffix(suffix: str, scope: str | None = None,
                            store: Any = None) -> list[tf.Variable]:
    return get_variables(scope=scope, suffix=suffix, store=store)


def get_variables_by_name(given_name: str, scope: str | None = None,
                          store: Any = None) -> list[tf.Variable]:
    """Variables whose last name component is `given_name` (`weights`)."""
    st = _store(store)
    return [st.get(n) for n in st.names() if _matches_scope(n, scope)
            and n.rsplit("/", 1)[-1] == given_name]


def get_unique_variable(var_op_name: str, store: Any = None) -> tf.Variable:
    """The one variable named exactly `var_op_name`.

    Raises:
      SlimError: no variable has that name.
    """
    st = _store(store)
    if var_op_name not in st:
        raise SlimError(f"couldn't find variable {var_op_name!r}; known variables start with: "
                        f"{', '.join(st.names()[:5])}")
    return st.get(var_op_name)


_DEFAULT_STEP_OWNER: VariableStore | None = None


def _step_owner(store: Any) -> VariableStore:
    """The store holding the global step: the one given, the active one, else a default."""
    global _DEFAULT_STEP_OWNER
    if store is not None:
        return _store(store)
    context = scopes.current_context()
    if context is not None:
        return context.store
    if _DEFAULT_STEP_OWNER is None:
        _DEFAULT_STEP_OWNER = VariableStore(name="default_global_step_owner")
    return _DEFAULT_STEP_OWNER


def get_global_step(store: Any = None) -> tf.Variable | None:
    """The global step of `store` (a Model or VariableStore; else the active store,
    else the process default), or None if none was created."""
    return _step_owner(store).global_step


def create_global_step(store: Any = None) -> tf.Variable:
    """Creates the int64 `global_step` variable (under the current strategy's scope).

    It belongs to the store (held beside its variables, not in its
    collections, so a model's variable lists are unchanged); with no store
    given or active, to one process-wide default, as TF1 kept one per graph.

    Raises:
      SlimError: one exists already.
    """
    owner = _step_owner(store)
    if owner.global_step is not None:
        raise SlimError("create_global_step: a global step exists already; use "
                        "get_or_create_global_step().")
    with tf.init_scope(), tf.name_scope(""):
        owner.global_step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
    return owner.global_step


def get_or_create_global_step(store: Any = None) -> tf.Variable:
    """The global step of `store`, created at 0 on first use (see `create_global_step`).

    Raises:
      SlimError: it was made outside the distribution strategy now in scope.
    """
    step = get_global_step(store)
    if step is None:
        return create_global_step(store)
    strategy = tf.distribute.get_strategy()
    if tf.distribute.has_strategy() and not strategy.extended.variable_created_in_scope(step):
        raise SlimError("the global step was created outside the current distribution "
                        "strategy; call get_or_create_global_step() under strategy.scope() "
                        "first, or pass global_step= explicitly.")
    return step
