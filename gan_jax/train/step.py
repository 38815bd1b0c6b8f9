"""The train step: n_critic critic updates then one generator update, as one pure function of the state.

`make_train_fn(gan, source, k)` fuses k steps into one dispatch with `lax.scan`, so per-step Python and
host-device overhead is paid once per k steps. Batches are drawn inside the step from device-resident arrays.

Everything here is per replica: `train.parallel` spreads it over devices (`gan.batch_sharding` splits the batch
under jit; `gan.axis_name` averages gradients, metrics and batch-norm statistics under pmap) and vmaps it over
population members. Both fields are None on one device, where they change nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gan_jax.augment import diff_augment
from gan_jax.build import GAN
from gan_jax.data.tabular import fixed_cond, sample_original_cond
from gan_jax.losses import critic_targets
from gan_jax.models.layers import cpu_compiler_options
from gan_jax.regularizers import add_instance_noise, clip_weights, gradient_penalty, instance_noise_std, r1_penalty
from gan_jax.train.state import GANState

Array = jax.Array
CRITIC_DROPOUT_SALT = 0xD0  # critic dropout keys: fold_in of the update's key (the split keys stay as they were)
CRITIC_VIEW_SALT = 0xA6  # DiffAugment / instance-noise keys, likewise
Metrics = dict[str, Array]
SampleFn = Callable[[dict[str, Array], Array, int], dict[str, Array]]


def sample_latent(key: Array, n: int, z_dim: int, kind: str) -> Array:
    if kind == "uniform":
        return jax.random.uniform(key, (n, z_dim), minval=-1.0, maxval=1.0)
    return jax.random.normal(key, (n, z_dim))


def _variables(params: Any, stats: Any) -> dict[str, Any]:
    return {"params": params, "batch_stats": stats} if stats else {"params": params}


def _generator_rngs(key: Array) -> dict[str, Array]:
    """'dropout' for dropout layers, 'sample' for stochastic output heads (the tabular Gumbel-softmax)."""
    return {"dropout": key, "sample": jax.random.fold_in(key, 1)}


def generate(gan: GAN, params: Any, stats: Any, z: Array, y: Any, key: Array, *, train: bool):
    """Runs G. In training mode batch-norm uses batch statistics and returns updated running averages."""
    if not train:
        return gan.generator.apply(_variables(params, stats), z, y, train=False, rngs=_generator_rngs(key)), stats
    x, stats, _ = generator_extra_loss(gan, params, stats, z, y, key)
    return x, stats


def generator_extra_loss(gan: GAN, params: Any, stats: Any, z: Array, y: Any, key: Array) -> tuple[Array, Any, Array]:
    """G in training mode, plus the sum of the losses it sows into its 'losses' collection (the tabular
    generator's conditional cross-entropy; 0 for generators that sow none). Returns (x, stats, extra)."""
    x, updates = gan.generator.apply(
        _variables(params, stats), z, y, train=True, rngs=_generator_rngs(key), mutable=["batch_stats", "losses"]
    )
    sown = jax.tree_util.tree_leaves(updates.get("losses", {}))
    extra = sum((jnp.sum(v) for v in sown), jnp.zeros((), jnp.float32))
    return x, dict(updates.get("batch_stats", stats)), extra


def criticize(gan: GAN, params: Any, stats: Any, x: Array, y: Any, key: Array | None = None) -> tuple[Array, Any]:
    """Runs D in training mode (batch statistics, spectral-norm power iterations; dropout from `key`) and
    returns logits and the updated running averages."""
    logits, stats, _ = criticize_with_classes(gan, params, stats, x, y, key)
    return logits, stats


def criticize_with_classes(
    gan: GAN, params: Any, stats: Any, x: Array, y: Any, key: Array | None = None
) -> tuple[Array, Any, Array | None]:
    """As `criticize`, plus the class logits an ACGAN critic sows (None for other critics)."""
    rngs = None if key is None else {"dropout": key}
    mutable = ["batch_stats", "aux"] if gan.conditioning == "acgan" else ["batch_stats"]
    logits, updates = gan.critic.apply(_variables(params, stats), x, y, train=True, rngs=rngs, mutable=mutable)
    # The one value an ACGAN critic sows (models.conditioning.CriticHead), wherever the family places its head.
    classes = jax.tree_util.tree_leaves(updates["aux"])[0] if gan.conditioning == "acgan" else None
    return logits, dict(updates.get("batch_stats", stats)), classes


def class_loss(class_logits: Array, labels: Array) -> tuple[Array, Array]:
    """ACGAN's auxiliary cross-entropy and the classifier's accuracy on these labels."""
    ce = optax.softmax_cross_entropy_with_integer_labels(class_logits.astype(jnp.float32), labels)
    return jnp.mean(ce), jnp.mean(jnp.argmax(class_logits, -1) == labels)


def critic_view(gan: GAN, x: Array, key: Array, step: Array) -> Array:
    """What the critic sees of a batch: DiffAugment's ops, then instance noise (both off by default). Applied to
    real and fake alike, in D's and G's updates, so G is trained through the same differentiable view."""
    if gan.augment:
        x = diff_augment(x, key, gan.augment)
    if gan.instance_noise > 0:
        std = instance_noise_std(step, gan.instance_noise, gan.instance_noise_steps)
        x = add_instance_noise(x, jax.random.fold_in(key, 1), std)
    return x


def _split_batch(gan: GAN, tree: Any) -> Any:
    """Under jit over a device mesh: lay the batch axis out across devices (one device: unchanged)."""
    return tree if gan.batch_sharding is None else jax.lax.with_sharding_constraint(tree, gan.batch_sharding)


def _replica_mean(gan: GAN, tree: Any) -> Any:
    """Under pmap: the mean over devices, i.e. the value for the global batch (otherwise unchanged)."""
    return tree if gan.axis_name is None else jax.lax.pmean(tree, gan.axis_name)


def _weight_on(weight: float | Array) -> bool:
    """A regularizer is on when its weight is positive; a traced per-member weight (a population) is always on."""
    return isinstance(weight, jax.Array) or weight > 0


def _cat(a: Any, b: Any) -> Any:
    """Concatenates two batches along the batch axis; conditions may be arrays, dicts of arrays or None."""
    return jax.tree_util.tree_map(lambda u, v: jnp.concatenate([u, v]), a, b)


def critic_update(gan: GAN, sample: SampleFn, state: GANState, arrays: dict[str, Array], key: Array):
    k_data, k_z, k_drop, k_gp, k_flip = jax.random.split(key, 5)
    k_d_drop = jax.random.fold_in(key, CRITIC_DROPOUT_SALT)
    batch = _split_batch(gan, sample(arrays, k_data, gan.batch_size))
    x_real, y = batch["x"], batch.get("y") if gan.conditional else None
    z = _split_batch(gan, sample_latent(k_z, gan.batch_size, gan.z_dim, gan.latent))
    x_fake, g_stats = generate(gan, state.g_params, state.g_stats, z, y, k_drop, train=True)
    x_fake = jax.lax.stop_gradient(x_fake)
    k_view = jax.random.fold_in(key, CRITIC_VIEW_SALT)
    x_real = critic_view(gan, x_real, jax.random.fold_in(k_view, 0), state.step)
    x_fake = critic_view(gan, x_fake, jax.random.fold_in(k_view, 1), state.step)
    # One target per critic logit: per pack with model.pack > 1, so smoothing and flips act on whole packs.
    n_logits = gan.batch_size // gan.pack
    t_real, t_fake = critic_targets(k_flip, n_logits, gan.label_smoothing, gan.label_flip_prob)

    def loss_fn(d_params):
        if state.d_stats:
            # Real and fake go through D separately, as in the PyTorch references: each is normalised by its own
            # batch statistics, and the running averages (and spectral-norm vectors) are threaded from the
            # first call into the second.
            real, stats, cls_real = criticize_with_classes(gan, d_params, state.d_stats, x_real, y, k_d_drop)
            d_fake_key = jax.random.fold_in(k_d_drop, 1)
            fake, stats, cls_fake = criticize_with_classes(gan, d_params, stats, x_fake, y, d_fake_key)
        else:
            # Without batch statistics examples are independent: one call on both halves is the same function
            # and runs as one larger matrix product.
            both_x = jnp.concatenate([x_real, x_fake])
            both, stats, cls_both = criticize_with_classes(gan, d_params, state.d_stats, both_x, _cat(y, y), k_d_drop)
            real, fake = jnp.split(both, 2)
            cls_real, cls_fake = jnp.split(cls_both, 2) if cls_both is not None else (None, None)
        loss = gan.loss.critic(real, fake, t_real, t_fake)
        aux = {"d_real": jnp.mean(real), "d_fake": jnp.mean(fake)}
        thr = gan.loss.decision_threshold
        aux |= {"acc_real": jnp.mean(real > thr), "acc_fake": jnp.mean(fake < thr)}
        if _weight_on(gan.gp_weight):
            k_gp_drop = jax.random.fold_in(k_gp, 1)
            gp = gradient_penalty(
                lambda x: criticize(gan, d_params, stats, x, y, k_gp_drop)[0], x_real, x_fake, k_gp, gan.pack
            )
            loss, aux = loss + gan.gp_weight * gp, aux | {"gp": gp}
        if cls_real is not None:  # ACGAN: D also classifies real images and the fakes drawn for each label
            (ce_real, acc_real), (ce_fake, acc_fake) = class_loss(cls_real, y), class_loss(cls_fake, y)
            w_real, w_fake, _ = gan.aux_weights
            loss = loss + w_real * ce_real + w_fake * ce_fake
            aux |= {"d_cls_real": ce_real, "d_cls_fake": ce_fake, "cls_acc_real": acc_real, "cls_acc_fake": acc_fake}
        if _weight_on(gan.r1_gamma):
            k_r1_drop = jax.random.fold_in(k_gp, 2)

            def r1_now() -> Array:
                return r1_penalty(lambda x: criticize(gan, d_params, stats, x, y, k_r1_drop)[0], x_real)

            # Lazy regularisation: every r1_every-th generator step, scaled by r1_every to keep its strength.
            r1 = jax.lax.cond(state.step % gan.r1_every == 0, r1_now, lambda: jnp.zeros((), jnp.float32))
            loss, aux = loss + 0.5 * gan.r1_gamma * gan.r1_every * r1, aux | {"r1": r1}
        return loss, (stats, aux)

    (loss, (d_stats, aux)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.d_params)
    loss, aux, grads = _replica_mean(gan, (loss, aux, grads))
    updates, d_opt = gan.d_tx.update(grads, state.d_opt, state.d_params)
    d_params = optax.apply_updates(state.d_params, updates)
    if gan.clip_value > 0:
        d_params = clip_weights(d_params, gan.clip_value)
    state = state.replace(d_params=d_params, d_stats=d_stats, d_opt=d_opt, g_stats=g_stats)
    return state, {"d_loss": loss, "d_grad_norm": optax.global_norm(grads), **aux}


def update_ema(gan: GAN, state: GANState, g_params: Any) -> Any:
    """EMA of G's weights (Karras et al. 2018; Yazici et al. 2019); it equals the weights until `ema_start`."""
    if state.g_ema is None:
        return None
    decay = jnp.where(state.step >= gan.ema_start, gan.ema_decay, 0.0)
    return jax.tree_util.tree_map(lambda e, p: decay * e + (1.0 - decay) * p, state.g_ema, g_params)


def generator_update(gan: GAN, sample: SampleFn, state: GANState, arrays: dict[str, Array], key: Array):
    k_data, k_z, k_drop = jax.random.split(key, 3)
    k_d_drop = jax.random.fold_in(key, CRITIC_DROPOUT_SALT)
    y = _split_batch(gan, sample(arrays, k_data, gan.batch_size)).get("y") if gan.conditional else None
    z = _split_batch(gan, sample_latent(k_z, gan.batch_size, gan.z_dim, gan.latent))

    k_view = jax.random.fold_in(jax.random.fold_in(key, CRITIC_VIEW_SALT), 1)

    def loss_fn(g_params):
        x_fake, g_stats, extra = generator_extra_loss(gan, g_params, state.g_stats, z, y, k_drop)
        x_fake = critic_view(gan, x_fake, k_view, state.step)
        # D's statistics are left unchanged by G's update.
        fake, _, cls_fake = criticize_with_classes(gan, state.d_params, state.d_stats, x_fake, y, k_d_drop)
        adversarial = gan.loss.generator(fake)
        cls = {}
        if cls_fake is not None:  # ACGAN: G is also rewarded for fakes the classifier assigns to their label
            cls["g_cls"], cls["g_cls_acc"] = class_loss(cls_fake, y)
            extra = extra + gan.aux_weights[2] * cls["g_cls"]
        return adversarial + extra, (g_stats, adversarial, extra, cls)

    (loss, (g_stats, adversarial, extra, cls)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.g_params)
    loss, grads = _replica_mean(gan, (loss, grads))
    updates, g_opt = gan.g_tx.update(grads, state.g_opt, state.g_params)
    g_params = optax.apply_updates(state.g_params, updates)
    state = state.replace(g_params=g_params, g_stats=g_stats, g_opt=g_opt, g_ema=update_ema(gan, state, g_params))
    metrics = {"g_loss": loss, "g_grad_norm": optax.global_norm(grads)}
    if gan.condition == "table":  # the two parts of G's loss, as CTGAN reports them
        metrics |= _replica_mean(gan, {"g_adversarial": adversarial, "g_cond_loss": extra})
    return state, metrics | _replica_mean(gan, cls)


NONFINITE_QUANTITIES = ("d_loss", "d_grad", "d_params", "g_loss", "g_grad", "g_params")


def _all_finite(tree: Any) -> Array:
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(tree)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.bool_(True)


def nonfinite_mask(d_metrics: Metrics, g_metrics: Metrics, state: GANState) -> Array:
    """A bit per entry of NONFINITE_QUANTITIES that holds a NaN or Inf after one train step (0: all finite).

    Gradients are judged by their global norm, so a norm that overflows float32 counts as non-finite too."""
    finite = (
        jnp.all(jnp.isfinite(d_metrics["d_loss"])),
        jnp.all(jnp.isfinite(d_metrics["d_grad_norm"])),
        _all_finite((state.d_params, state.d_stats)),
        jnp.isfinite(g_metrics["g_loss"]),
        jnp.isfinite(g_metrics["g_grad_norm"]),
        _all_finite((state.g_params, state.g_stats, state.g_ema)),
    )
    return sum(jnp.where(ok, 0, 1 << bit) for bit, ok in enumerate(finite)).astype(jnp.int32)


def describe_nonfinite(mask: int) -> str:
    return ", ".join(name for bit, name in enumerate(NONFINITE_QUANTITIES) if mask & (1 << bit))


def _select(pred: Array, on_true: Any, on_false: Any) -> Any:
    return jax.tree_util.tree_map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)


def guard_nonfinite(mode: str, old: GANState, new: GANState, mask: Array) -> GANState:
    """The divergence guard. `skip`: a step with a non-finite value leaves the state as it was (but the step
    counter moves on, so the next step draws fresh keys) and is counted. `stop`: the first such step freezes
    the state at the last good values and records the step and what went wrong, for the host loop to report."""
    ok = mask == 0
    if mode == "skip":
        kept = _select(ok, new, old)
        return kept.replace(step=old.step + 1, nonfinite_skipped=old.nonfinite_skipped + (~ok).astype(jnp.int32))
    halted = old.nonfinite_step >= 0
    apply = ok & ~halted
    first_bad = ~ok & ~halted
    kept = _select(apply, new, old)
    return kept.replace(
        step=jnp.where(apply, old.step + 1, old.step),
        nonfinite_step=jnp.where(first_bad, old.step, old.nonfinite_step),
        nonfinite_what=jnp.where(first_bad, mask, old.nonfinite_what),
    )


def train_step(gan: GAN, sample: SampleFn, state: GANState, arrays: dict[str, Array]) -> tuple[GANState, Metrics]:
    """One generator step: `n_critic` critic updates, then one generator update. Keys: fold_in(key, step), and
    under pmap fold_in(that, device index): each device draws its own part of the batch."""
    step_key = jax.random.fold_in(state.key, state.step)
    if gan.axis_name is not None:
        step_key = jax.random.fold_in(step_key, jax.lax.axis_index(gan.axis_name))
    d_keys = jax.random.split(jax.random.fold_in(step_key, 0), gan.n_critic)
    g_key = jax.random.fold_in(step_key, 1)

    def critic_body(s, k):
        return critic_update(gan, sample, s, arrays, k)

    new, d_metrics = jax.lax.scan(critic_body, state, d_keys)
    new, g_metrics = generator_update(gan, sample, new, arrays, g_key)
    mask = nonfinite_mask(d_metrics, g_metrics, new)
    last_critic = jax.tree_util.tree_map(lambda m: m[-1], d_metrics)
    return guard_nonfinite(gan.on_nonfinite, state, new, mask), {**last_critic, **g_metrics, "nonfinite": mask}


def _mean_over_good_steps(metrics: Metrics, count_skipped: bool) -> Metrics:
    """Means over the fused steps whose values were finite (NaN when none was); optionally the skip count."""
    ok = metrics.pop("nonfinite") == 0
    n_ok = jnp.sum(ok)
    means = {
        k: jnp.where(n_ok > 0, jnp.sum(jnp.where(ok, m.astype(jnp.float32), 0.0)) / jnp.maximum(n_ok, 1), jnp.nan)
        for k, m in metrics.items()
    }
    if count_skipped:
        means["nonfinite_skipped"] = jnp.sum(~ok).astype(jnp.float32)
    return means


TrainFn = Callable[[GANState, dict], tuple[GANState, Metrics]]


def train_steps(gan: GAN, sample: SampleFn, steps: int) -> TrainFn:
    """`steps` train steps as one pure function (not jitted): what `make_train_fn` jits and `train.parallel`
    maps over devices or population members. Returns the new state and metrics averaged over the steps;
    steps the divergence guard rejected are left out of the means (see `guard_nonfinite`)."""

    def run(state: GANState, arrays: dict[str, Array]) -> tuple[GANState, Metrics]:
        state, metrics = jax.lax.scan(lambda s, _: train_step(gan, sample, s, arrays), state, None, length=steps)
        return state, _mean_over_good_steps(metrics, count_skipped=gan.on_nonfinite == "skip")

    return run


def make_train_fn(gan: GAN, sample: SampleFn, steps: int) -> TrainFn:
    """`steps` train steps in one jitted dispatch (see `train_steps`).

    The input state is donated: its buffers are reused for the output, so call it as `state = fn(state, ...)`.
    """
    return jax.jit(train_steps(gan, sample, steps), donate_argnums=0, compiler_options=cpu_compiler_options())


@functools.lru_cache(maxsize=16)
def make_sample_fn(gan: GAN, batch_size: int) -> Callable[..., Array]:
    """Jitted G in evaluation mode (running batch-norm statistics); one fixed batch size, one compilation.
    Cached per (gan, batch_size): the evaluators of a population's members share one compiled sampler.

    `fn(state, key)`, or for class-conditional GANs `fn(state, key, labels)` with int labels (batch_size,);
    without labels a conditional G gets labels drawn uniformly over the classes."""

    def run(state: GANState, key: Array, labels: Array | None = None) -> Array:
        k_z, k_y = jax.random.split(key) if gan.class_conditional else (key, key)
        z = sample_latent(k_z, batch_size, gan.z_dim, gan.latent)
        y = None
        if gan.class_conditional:
            y = jax.random.randint(k_y, (batch_size,), 0, gan.num_classes) if labels is None else labels
        return generate(gan, state.sampling_params, state.g_stats, z, y, key, train=False)[0]

    return jax.jit(run, compiler_options=cpu_compiler_options())


@functools.lru_cache(maxsize=16)
def make_table_sample_fn(gan: GAN, batch_size: int) -> Callable[[GANState, Array, Any, Array], Array]:
    """Jitted tabular G in evaluation mode: `fn(state, key, cond_arrays, index)` gives model-space rows whose
    condition is drawn from the data's category frequencies (CTGAN's sampling) when `index` < 0, or is the
    one category `index` (`TableTransformer.cond_index(column, value)`) for every row."""

    def run(state: GANState, key: Array, cond_arrays: Any, index: Array) -> Array:
        k_z, k_cond, k_out = jax.random.split(key, 3)
        z = sample_latent(k_z, batch_size, gan.z_dim, gan.latent)
        drawn = sample_original_cond(cond_arrays, k_cond, batch_size)
        cond = jnp.where(index >= 0, fixed_cond(gan.cond_dim, jnp.maximum(index, 0), batch_size), drawn)
        return generate(gan, state.sampling_params, state.g_stats, z, {"cond": cond}, k_out, train=False)[0]

    return jax.jit(run, compiler_options=cpu_compiler_options())


def sample_generator(
    sample_fn: Callable[..., Array],
    state: GANState,
    key: Array,
    n: int,
    labels: Any = None,
    batch_size: int | None = None,
) -> Array:
    """n samples from a `make_sample_fn` function, batch by batch (the last batch is trimmed).

    `labels`: n int class labels for a class-conditional G, with the sampler's `batch_size`; each batch takes
    the next ones (the last is padded with label 0 and trimmed), so sample i is drawn for labels[i]."""
    if labels is not None and batch_size is None:
        raise ValueError("sample_generator: pass the sampler's batch_size together with labels")
    labels = None if labels is None else np.asarray(labels, np.int32)
    chunks, total = [], 0
    while total < n:
        k = jax.random.fold_in(key, len(chunks))
        if labels is None:
            chunks.append(sample_fn(state, k))
        else:
            part = labels[total : total + batch_size]
            chunks.append(sample_fn(state, k, jnp.asarray(np.pad(part, (0, batch_size - len(part))))))
        total += chunks[-1].shape[0]
    return jnp.concatenate(chunks)[:n]
