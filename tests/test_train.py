"""slimcli.train end to end in-process: learning, fine-tuning, distribution, NaN, resume."""

import logging

import numpy as np
import pytest
import tensorflow as tf

from slimcli import optimization, slim, train_data
from slimcli import train as train_lib
from slimcli.distribute import make_strategy, mirrored_strategy
from slimcli.errors import SlimError
from slimcli.nets import nets_factory
from slimcli.slim import learning
from slimcli.slim.training_loop import CheckpointSaver


def _config(tmp_path, **kw):
    base = dict(model_name="lenet", synthetic_data=True, train_dir=str(tmp_path / "train"),
                batch_size=16, max_number_of_steps=4, log_every_n_steps=100, weight_decay=0.0,
                optimizer="sgd", learning_rate=0.01, learning_rate_decay_type="fixed", seed=1,
                save_summaries_secs=0, progress_bar=False)
    base.update(kw)
    return train_lib.TrainConfig(**base)


def _ckpt(path):
    reader = tf.train.load_checkpoint(str(path))
    return {n: reader.get_tensor(n) for n in reader.get_variable_to_shape_map()}


def _evaluate(model_name, train_dir, image_size, num_classes):
    """(loss, accuracy) of the checkpoint in train_dir on the generated training pool."""
    net = nets_factory.get_network_fn(model_name, num_classes)
    ds = train_data.synthetic_dataset(32, image_size, num_classes, seed=1)
    net.build([None, image_size, image_size, 3])
    slim.assign_from_checkpoint(str(train_dir), net.variables_dict())
    hits = total = 0
    loss = 0.0
    for images, labels in ds.take(4):
        logits, _ = net(images, is_training=False)
        hits += int(tf.reduce_sum(tf.cast(tf.argmax(logits, 1) == labels, tf.int32)))
        loss += float(tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(labels,
                                                                                  logits)))
        total += int(labels.shape[0])
    return loss / total, hits / total


@pytest.mark.parametrize("model_name,size,steps,lr", [("lenet", 28, 30, 0.005),
                                                     ("cifarnet", 32, 30, 0.05)])
def test_loss_falls_and_accuracy_rises(tmp_path, model_name, size, steps, lr):
    if model_name not in nets_factory.list_nets():
        pytest.skip(f"{model_name} has not landed in this branch")
    cfg = _config(tmp_path, model_name=model_name, max_number_of_steps=1, optimizer="momentum",
                  learning_rate=lr, batch_size=32)
    train_lib.train(cfg)
    loss_before, acc_before = _evaluate(model_name, cfg.train_dir, size, 10)
    cfg.max_number_of_steps = steps
    assert train_lib.train(cfg) == steps
    loss_after, acc_after = _evaluate(model_name, cfg.train_dir, size, 10)
    assert loss_after < 0.5 * loss_before, (loss_before, loss_after)
    assert acc_after >= 0.8 and acc_after > acc_before + 0.3, (acc_before, acc_after)


def _source_checkpoint(tmp_path, num_classes=10):
    net = nets_factory.get_network_fn("lenet", num_classes)
    net.build([None, 28, 28, 3])
    rng = np.random.RandomState(3)
    values = {n: rng.normal(0, 0.05, v.shape).astype(np.float32)
              for n, v in net.variables_dict().items()}
    prefix = str(tmp_path / "src" / "model.ckpt")
    slim.save_checkpoint(values, prefix)
    return prefix, values


def test_fine_tune_restores_non_excluded_and_trains_only_trainable_scopes(tmp_path, caplog):
    prefix, src = _source_checkpoint(tmp_path)
    cfg = _config(tmp_path, synthetic_num_classes=5, checkpoint_path=str(tmp_path / "src"),
                  checkpoint_exclude_scopes="LeNet/fc4", trainable_scopes="LeNet/fc4",
                  max_number_of_steps=2)
    with caplog.at_level(logging.INFO, logger="slimcli.train"):
        train_lib.train(cfg)
    assert "restored 6 of 8 variables" in caplog.text
    out = _ckpt(tmp_path / "train")
    for name, value in src.items():
        if name.startswith("LeNet/fc4"):
            continue
        np.testing.assert_array_equal(out[name], value, err_msg=name)
    assert out["LeNet/fc4/weights"].shape == (1024, 5)
    assert int(out["global_step"]) == 2
    tags = {v.tag for f in (tmp_path / "train").glob("events.out.tfevents.*")
            for e in tf.compat.v1.train.summary_iterator(str(f)) for v in e.summary.value}
    assert {"total_loss", "learning_rate", "losses/cross_entropy", "input_images",
            "LeNet/fc4/weights"} <= tags
    # A checkpoint in train_dir wins over --checkpoint_path, with the original's log line.
    cfg.max_number_of_steps = 3
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="slimcli.train"):
        assert train_lib.train(cfg) == 3
    assert "Ignoring --checkpoint_path because a checkpoint already exists" in caplog.text
    assert "Resuming from" in caplog.text


def test_checkpoint_that_does_not_fit_names_variables_and_the_fix(tmp_path):
    _source_checkpoint(tmp_path)
    cfg = _config(tmp_path, synthetic_num_classes=5, checkpoint_path=str(tmp_path / "src"))
    with pytest.raises(SlimError) as err:
        train_lib.train(cfg)
    msg = str(err.value)
    assert "LeNet/fc4/weights: checkpoint [1024, 10] vs model [1024, 5]" in msg
    assert "--checkpoint_exclude_scopes=LeNet/fc4" in msg
    assert slim.latest_checkpoint(cfg.train_dir) is None


def test_checkpoint_of_another_net_names_that_net_not_every_scope(tmp_path):
    cifarnet = nets_factory.get_network_fn("cifarnet", 10)
    cifarnet.build([None, 32, 32, 3])
    slim.save_checkpoint({n: v.numpy() for n, v in cifarnet.variables_dict().items()},
                         str(tmp_path / "src" / "model.ckpt-1"))
    cfg = _config(tmp_path, checkpoint_path=str(tmp_path / "src"))
    with pytest.raises(SlimError) as err:
        train_lib.train(cfg)
    msg = str(err.value)
    assert "holds none of the 8 variables of lenet: it is a checkpoint of cifarnet" in msg
    assert "Fine-tune it with --model_name=cifarnet" in msg
    assert "LeNet/conv1" not in msg  # no exclude list of every layer


def test_bad_trainable_scopes_and_missing_checkpoint(tmp_path):
    with pytest.raises(SlimError, match="--trainable_scopes=LeNet/nope"):
        train_lib.train(_config(tmp_path, trainable_scopes="LeNet/nope"))
    with pytest.raises(SlimError, match="not found"):
        train_lib.train(_config(tmp_path, checkpoint_path=str(tmp_path / "none.ckpt")))
    with pytest.raises(SlimError, match="fake quantization, which computes in float32"):
        train_lib.train(_config(tmp_path, quantize_delay=10, precision="bfloat16"))
    with pytest.raises(SlimError, match="parameter-server"):
        make_strategy(num_ps_tasks=1)


def _lenet_step(strategy, data, steps):
    """Runs `steps` SGD steps of a dropout-free lenet on the same global batches."""
    tf.random.set_seed(7)
    net = nets_factory.get_network_fn("lenet", 10, weight_decay=0.001, is_training=True,
                                      dropout_keep_prob=1.0)
    with strategy.scope():
        net.build([None, 28, 28, 3])
        for name, var in net.variables_dict().items():
            var.assign(np.random.RandomState(len(name)).normal(0, 0.05, var.shape)
                       .astype(np.float32))

        def loss_fn(batch):
            logits, _ = net(batch[0])
            slim.losses.softmax_cross_entropy(logits, tf.one_hot(batch[1], 10))
        step = learning.create_train_op(loss_fn, optimization.make_optimizer("momentum",
                                                                             {"momentum": 0.9}),
                                        net, learning_rate=0.05, strategy=strategy,
                                        clip_gradient_norm=5.0)
    it = iter(strategy.experimental_distribute_dataset(data))
    losses = [float(step(it)["total_loss"]) for _ in range(steps)]
    return losses, learning.host_values(net.variables_dict(), strategy)


def test_mirrored_two_cpus_matches_one_device(tmp_path):
    if len(tf.config.list_logical_devices("CPU")) < 2:
        pytest.skip("needs 2 logical CPU devices (tests/conftest.py)")
    data = train_data.synthetic_dataset(16, 28, 10, seed=5)
    one_losses, one = _lenet_step(tf.distribute.get_strategy(), data, 3)
    mirrored = mirrored_strategy(["/cpu:0", "/cpu:1"])
    two_losses, two = _lenet_step(mirrored, data, 3)
    np.testing.assert_allclose(two_losses, one_losses, rtol=1e-4)
    for name in one:
        np.testing.assert_allclose(two[name], one[name], rtol=1e-4, atol=1e-6, err_msg=name)


def test_num_clones_clone_on_cpu_trains(tmp_path):
    if len(tf.config.list_logical_devices("CPU")) < 2:
        pytest.skip("needs 2 logical CPU devices (tests/conftest.py)")
    cfg = _config(tmp_path, num_clones=2, clone_on_cpu=True, max_number_of_steps=2,
                  moving_average_decay=0.99)
    info = make_strategy(2, True)
    assert info.num_replicas == 2
    assert train_lib.train(cfg, info) == 2
    out = _ckpt(tmp_path / "train")
    assert "LeNet/fc4/weights/ExponentialMovingAverage" in out


def test_nan_loss_stops_with_step_and_keeps_last_checkpoint(tmp_path):
    net = nets_factory.get_network_fn("lenet", 10, is_training=True)
    net.build([None, 28, 28, 3])
    # The sixth batch carries a NaN factor that the loss is multiplied by.
    factors = tf.data.Dataset.from_tensor_slices([1.0] * 5 + [np.nan] * 10)
    data = tf.data.Dataset.zip(train_data.synthetic_dataset(8, 28, 10), factors)
    it = iter(data)

    def loss_fn(batch):
        (images, labels), factor = batch
        logits, _ = net(images)
        return factor * slim.losses.softmax_cross_entropy(logits, tf.one_hot(labels, 10))
    step = learning.create_train_op(loss_fn, optimization.make_optimizer("sgd", {}), net,
                                    learning_rate=0.01)
    to_save = {**net.variables_dict(), "global_step": step.global_step}
    with pytest.raises(learning.TrainingDiverged, match="at global step 6") as err:
        learning.train(lambda: step(it), str(tmp_path), variables_to_save=to_save,
                       global_step=step.global_step, number_of_steps=20,
                       save_interval_steps=2, save_interval_secs=0, save_summaries_secs=0,
                       progress_bar=False)
    assert "model.ckpt-4 is intact" in str(err.value)
    latest = slim.latest_checkpoint(str(tmp_path))
    assert latest.endswith("model.ckpt-4")
    values = _ckpt(latest)
    assert int(values["global_step"]) == 4
    assert all(np.isfinite(v).all() for v in values.values())


def test_keep_checkpoint_every_n_hours_preserves_old_files(tmp_path):
    var = tf.Variable(1.0)
    saver = CheckpointSaver(str(tmp_path), {"v": var}, max_to_keep=1,
                                                   keep_checkpoint_every_n_hours=0.0)
    for step in (1, 2, 3):
        saver.save(step)
    assert sorted(p.name for p in tmp_path.glob("*.index")) == [
        "model.ckpt-1.index", "model.ckpt-2.index", "model.ckpt-3.index"]
    state = tf.train.get_checkpoint_state(str(tmp_path))
    assert [p.rsplit("/", 1)[-1] for p in state.all_model_checkpoint_paths] == ["model.ckpt-3"]


def test_bfloat16_trains_float32_variables(tmp_path):
    cfg = _config(tmp_path, mixed_precision=True, mixed_precision_dtype="bfloat16",
                  max_number_of_steps=2)
    assert train_lib.train(cfg) == 2
    out = _ckpt(tmp_path / "train")
    assert out["LeNet/conv1/weights"].dtype == np.float32
    assert all(np.isfinite(v).all() for v in out.values())


def test_float16_mixed_precision_trains_with_loss_scaling(tmp_path):
    cfg = _config(tmp_path, mixed_precision=True, mixed_precision_dtype="float16",
                  max_number_of_steps=2, batch_size=4)
    assert train_lib.train(cfg) == 2
    out = _ckpt(tmp_path / "train")
    assert out["LeNet/conv1/weights"].dtype == np.float32
    assert all(np.isfinite(v).all() for v in out.values() if v.dtype.kind == "f")


def test_seed_makes_training_repeatable_and_jit_compile_trains(tmp_path):
    def weights(sub, **kw):
        cfg = _config(tmp_path / sub, max_number_of_steps=3, **kw)
        assert train_lib.train(cfg) == 3
        return _ckpt(cfg.train_dir)["LeNet/fc4/weights"]
    first, again, other = weights("a", seed=3), weights("b", seed=3), weights("c", seed=4)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)
    # XLA draws dropout masks from its own generator, which --seed does not fix
    # (docs/train.md); the compiled step still trains.
    jitted = weights("d", seed=3, jit_compile=True)
    assert np.isfinite(jitted).all() and not np.allclose(jitted, first)


def _aux_net(images):
    """A stand-in net whose logits and AuxLogits are fixed, for the loss arithmetic."""
    bias = slim.model_variable("bias", [3], initializer=slim.zeros_initializer())
    return (tf.constant([[2.0, 0.0, -1.0]]) + bias,
            {"AuxLogits": tf.constant([[0.0, 1.0, 0.0]]) + bias})


def test_loss_adds_the_auxiliary_logits_at_weight_0_4(tmp_path):
    cfg = _config(tmp_path, label_smoothing=0.0)
    loss_fn = train_lib._loss_fn(slim.Model(_aux_net), cfg, 3)
    with slim.losses.collect():
        total, metrics = loss_fn((tf.zeros([1, 2, 2, 3]), tf.constant([0])))
    main = -np.log(np.exp(2.0) / (np.exp(2.0) + 1 + np.exp(-1.0)))
    aux = -np.log(1 / (2 + np.e))
    assert float(total) == pytest.approx(main + train_lib.AUX_LOGITS_WEIGHT * aux, rel=1e-6)
    assert train_lib.AUX_LOGITS_WEIGHT == 0.4
    assert float(metrics["losses/cross_entropy"]) == pytest.approx(float(total), rel=1e-6)


def test_local_strategy_ignores_tf_config(monkeypatch):
    from slimcli.distribute import local_strategy
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}, '
                                    '"task": {"type": "worker", "index": 0}}')
    assert local_strategy() is tf.distribute.get_strategy()
    mirrored = local_strategy(2, clone_on_cpu=True)
    assert isinstance(mirrored, tf.distribute.MirroredStrategy)
    assert mirrored.num_replicas_in_sync == 2
    with pytest.raises(SlimError, match="--num_clones must be at least 1"):
        local_strategy(0)
