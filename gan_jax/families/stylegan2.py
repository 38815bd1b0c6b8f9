"""The `stylegan2` family: StyleGAN2 with adaptive discriminator augmentation (Karras et al. 2020a, 2020b), as
NVlabs/stylegan2-ada-pytorch's `training/loss.py` and `training/training_loop.py` train it.

One train step is one reference iteration, its phases in the reference's order:

* **Gmain**: the non-saturating logistic loss softplus(-D(aug(G(z)))), mixing styles with probability
  `style_mixing_prob` (a second z from a random layer cutoff on).
* **Greg** (every `pl_every` steps, scaled by it): path-length regularisation on a batch shrunk by
  `pl_batch_shrink`: |J_w^T y| against its running mean `pl_mean` (decay `pl_decay`), weight `pl_weight`.
* **Dmain**: softplus(D(aug(fake))) + softplus(-D(aug(real))).
* **Dreg** (every `r1_every` steps, scaled by it): R1, γ/2 · |∇_x D(aug(x))|² at the un-augmented reals.
* **tick**: G's EMA (half-life `ema_kimg`, ramp-up `ema_rampup`), the image counter, and every `ada_interval`
  steps ADA's update of the augmentation probability p from r_t = E[sign(D(real))] (target `ada_target`).

Every phase draws its own latents, all phases of a step see the same reals, and each lazy phase steps the same
Adam as its main phase, whose lr and betas are rescaled by mb_ratio = k / (k + 1) as the reference does. p, the
sign statistics, pl_mean and the image counter live in `state.extra`, so a resumed run continues exactly.
Deliberate differences: non-finite gradients are left to the divergence guard (train.on_nonfinite) instead of
being zeroed (the reference's nan_to_num); under pmap pl_mean and w_avg are averaged over devices, so they stay
replicated (the reference keeps one per GPU). Networks: `models/stylegan2.py`; augmentation: `gan_jax/ada.py`.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from gan_jax.config import Config
from gan_jax.families.base import Family, Layout, Metrics, Phase
from gan_jax.models.layers import cpu_compiler_options
from gan_jax.optimizers import build_optimizer
from gan_jax.registry import MODELS
from gan_jax.train.state import NetState, TrainState, new_state, run_once

Array = jax.Array
REAL_SALT = 0x5EA1  # the step's real batch: fold_in(fold_in(run key, step), REAL_SALT), the same in every phase


@dataclass(frozen=True)
class StyleGAN2(Family):
    """Everything static about a StyleGAN2 run (hashable, array-free; see gan.GAN for why)."""

    name = "stylegan2"
    nonfinite_quantities = ("g_loss", "g_grad", "g_params", "d_loss", "d_grad", "d_params")

    generator: nn.Module  # models.stylegan2.Generator: methods mapping and synthesis
    critic: nn.Module  # models.stylegan2.Discriminator
    g_tx: optax.GradientTransformation
    d_tx: optax.GradientTransformation
    sample: Callable[[dict[str, Array], Array, int], dict[str, Array]]  # the data source's (arrays, key, n)
    z_dim: int
    num_ws: int
    example_shape: tuple[int, ...]
    num_classes: int | None  # class-conditional: the labels' count (c is their one-hot code)
    batch_size: int
    r1_gamma: float = 10.0
    r1_every: int = 16
    pl_weight: float = 2.0
    pl_every: int = 4
    pl_decay: float = 0.01
    pl_batch_shrink: int = 2
    style_mixing_prob: float = 0.9
    ema_kimg: float = 10.0
    ema_rampup: float = 0.0  # 0: none
    augment: Any = None  # an ada.AdaSpec, or None: no augmentation
    augment_p: float = 0.0  # initial p
    ada_target: float = 0.0  # > 0: adapt p towards this r_t; 0: p stays fixed
    ada_interval: int = 4
    ada_kimg: float = 500.0
    truncation_psi: float = 1.0  # sampling and evaluation
    truncation_cutoff: int | None = None
    on_nonfinite: str = "stop"
    layout: Layout = field(default_factory=Layout)

    @property
    def replica_batch(self) -> int:
        return self.layout.per_replica(self.batch_size)

    @property
    def class_conditional(self) -> bool:
        return self.num_classes is not None

    @property
    def c_dim(self) -> int:
        return self.num_classes or 0

    # --- the contract -------------------------------------------------------------------------------------------

    def init(self, seed: int) -> TrainState:
        """G (mapping + synthesis, its w_avg and constant noise in `stats`), its EMA, D, both Adams, ADA's p."""
        k_g, k_noise, k_d, k_run = jax.random.split(jax.random.PRNGKey(seed), 4)
        z = jnp.zeros((1, self.z_dim), jnp.float32)
        x = jnp.zeros((1, *self.example_shape), jnp.float32)
        c = self.condition(jnp.zeros((1,), jnp.int32))
        g_vars = run_once(lambda k, kn: self.generator.init({"params": k, "noise": kn}, z, c), k_g, k_noise)
        d_vars = run_once(lambda k: self.critic.init({"params": k}, x, c), k_d)
        g_params, d_params = g_vars["params"], d_vars["params"]
        ema = jax.tree_util.tree_map(jnp.copy, g_params)  # own buffers: the train step donates the state
        nets = {
            "G": NetState(g_params, dict(g_vars.get("stats", {})), self.g_tx.init(g_params), ema),
            "D": NetState(d_params, dict(d_vars.get("stats", {})), self.d_tx.init(d_params)),
        }
        extra = {
            "augment_p": jnp.asarray(self.augment_p, jnp.float32),
            "ada_sign_sum": jnp.zeros((), jnp.float32),
            "ada_sign_count": jnp.zeros((), jnp.float32),
            "pl_mean": jnp.zeros((), jnp.float32),
            "nimg": jnp.zeros((), jnp.int32),
        }
        return new_state(k_run, nets, extra)

    def phases(self) -> tuple[Phase, ...]:
        phases = [Phase("Gmain", lambda s, a, k: generator_main(self, s, a, k))]
        if self.pl_weight > 0:
            phases.append(Phase("Greg", lambda s, a, k: path_length_update(self, s, a, k), every=self.pl_every))
        phases.append(Phase("Dmain", lambda s, a, k: critic_main(self, s, a, k)))
        if self.r1_gamma > 0:
            phases.append(Phase("Dreg", lambda s, a, k: r1_update(self, s, a, k), every=self.r1_every))
        return (*phases, Phase("tick", lambda s, a, k: tick(self, s)))

    def finite_checks(self, metrics: Metrics, state: TrainState) -> tuple[Array, ...]:
        from gan_jax.families.gan import all_finite

        g, d = state.nets["G"], state.nets["D"]
        return (
            jnp.isfinite(metrics["g_loss"]) & jnp.isfinite(metrics.get("pl_penalty", 0.0)),
            jnp.isfinite(metrics["g_grad_norm"]) & jnp.isfinite(metrics.get("g_reg_grad_norm", 0.0)),
            all_finite((g.params, g.stats, g.ema, state.extra["pl_mean"])),
            jnp.isfinite(metrics["d_loss"]) & jnp.isfinite(metrics.get("r1_penalty", 0.0)),
            jnp.isfinite(metrics["d_grad_norm"]) & jnp.isfinite(metrics.get("d_reg_grad_norm", 0.0)),
            all_finite((d.params, state.extra["augment_p"])),
        )

    def sampler(self, batch_size: int) -> Callable[..., Array]:
        return make_sample_fn(self, batch_size)

    def critic_scorer(self) -> Callable[..., Array]:
        return make_critic_fn(self)

    def evaluator(self, cfg: Config, source: Any) -> Any:
        from gan_jax.evaluation import Evaluator

        return Evaluator(self, source, cfg)

    def write_samples(self, sample_cfg: Any, run: Config, source: Any, state: TrainState) -> Any:
        from gan_jax.families.stylegan2_sample import write_samples

        return write_samples(self, sample_cfg, run, state)

    def describe(self, state: TrainState) -> dict[str, Any]:
        from gan_jax.train.state import count_params

        g = state.nets["G"].params
        return {
            "g_params": count_params(g),
            "g_mapping_params": count_params(g.get("mapping", {})),
            "g_synthesis_params": count_params(g.get("synthesis", {})),
            "d_params": count_params(state.nets["D"].params),
        }

    def condition(self, labels: Array | None) -> Array | None:
        """The networks' condition c: one-hot labels for a class-conditional run, None otherwise."""
        if self.num_classes is None or labels is None:
            return None
        return jax.nn.one_hot(labels, self.num_classes, dtype=jnp.float32)


# --- networks -------------------------------------------------------------------------------------------------------


def _g_variables(net: NetState, params: Any) -> dict[str, Any]:
    return {"params": params, "stats": net.stats}


def _mean_stats(family: StyleGAN2, stats: Any) -> Any:
    """w_avg after an update from this replica's batch: the mean over devices, so it stays replicated."""
    return family.layout.replica_mean(stats)


def mapped_ws(
    family: StyleGAN2, net: NetState, params: Any, z: Array, c: Array | None, key: Array
) -> tuple[Array, Any]:
    """The mapping half of the reference's `run_G`: ws (updating w_avg), mixed with the styles of a second z from
    a random layer cutoff on, with probability style_mixing_prob. Returns the ws and G's updated stats."""
    g = family.generator
    k_mix, k_cut, k_prob = jax.random.split(key, 3)
    ws, updated = family.layout.apply(
        g, _g_variables(net, params), z, c, update_w_avg=True, method=g.mapping, mutable=["stats"]
    )
    stats = _mean_stats(family, dict(updated["stats"]))
    if family.style_mixing_prob > 0:
        cutoff = jax.random.randint(k_cut, (), 1, family.num_ws)
        cutoff = jnp.where(jax.random.uniform(k_prob) < family.style_mixing_prob, cutoff, family.num_ws)
        z2 = jax.random.normal(k_mix, z.shape, z.dtype)
        ws2 = g.apply({"params": params, "stats": stats}, z2, c, method=g.mapping)  # no w_avg update
        ws = jnp.where((jnp.arange(family.num_ws) >= cutoff)[None, :, None], ws2, ws)
    return ws, stats


def synthesis(family: StyleGAN2, params: Any, stats: Any, ws: Array, key: Array) -> Array:
    """G's synthesis network in training mode (random noise inputs)."""
    g = family.generator
    return g.apply({"params": params, "stats": stats}, ws, method=g.synthesis, rngs={"noise": key})


def run_generator(
    family: StyleGAN2, net: NetState, params: Any, z: Array, c: Array | None, key: Array
) -> tuple[Array, Any]:
    """The reference's `run_G`: images from z (and c), and G's updated stats."""
    k_map, k_noise = jax.random.split(key)
    ws, stats = mapped_ws(family, net, params, z, c, k_map)
    return synthesis(family, params, stats, ws, k_noise), stats


def run_critic(family: StyleGAN2, params: Any, x: Array, c: Array | None, p: Array, key: Array) -> Array:
    """The reference's `run_D`: ADA's augmentation (when on) with probability p, then D's logits [N]."""
    if family.augment is not None:
        from gan_jax.ada import augment

        x = augment(x, key, p, family.augment)
    return family.layout.apply(family.critic, {"params": params}, x, c)[:, 0]


def _latents(family: StyleGAN2, arrays: dict[str, Array], key: Array, n: int) -> tuple[Array, Array | None]:
    """z ~ N(0, I) and, for a conditional run, labels drawn from the training set (the reference's gen_c)."""
    k_z, k_c = jax.random.split(key)
    z = family.layout.split_batch(jax.random.normal(k_z, (n, family.z_dim), jnp.float32))
    if family.num_classes is None:
        return z, None
    labels = family.layout.split_batch(family.sample(arrays, k_c, n)["y"])
    return z, family.condition(labels)


def _reals(family: StyleGAN2, state: TrainState, arrays: dict[str, Array]) -> tuple[Array, Array | None]:
    """The step's real batch, the same in every phase (the reference draws it once per iteration)."""
    key = family.layout.device_key(jax.random.fold_in(jax.random.fold_in(state.key, state.step), REAL_SALT))
    batch = family.layout.split_batch(family.sample(arrays, key, family.replica_batch))
    return batch["x"], family.condition(batch.get("y"))


def _step(family: StyleGAN2, tx: optax.GradientTransformation, net: NetState, grads: Any) -> NetState:
    updates, opt = tx.update(grads, net.opt, net.params)
    return net.replace(params=optax.apply_updates(net.params, updates), opt=opt)


def _with_net(state: TrainState, name: str, net: NetState, **extra: Array) -> TrainState:
    return state.replace(nets={**state.nets, name: net}, extra={**state.extra, **extra})


# --- phases ---------------------------------------------------------------------------------------------------------


def generator_main(family: StyleGAN2, state: TrainState, arrays: dict[str, Array], key: Array) -> tuple:
    """Gmain: maximise D's logits of fakes (D frozen; its augmentation with the current p)."""
    k_lat, k_g, k_aug = jax.random.split(key, 3)
    g, d, p = state.nets["G"], state.nets["D"], state.extra["augment_p"]
    z, c = _latents(family, arrays, k_lat, family.replica_batch)

    def loss_fn(params: Any) -> tuple[Array, tuple]:
        images, stats = run_generator(family, g, params, z, c, k_g)
        logits = run_critic(family, d.params, images, c, p, k_aug)
        return jnp.mean(jax.nn.softplus(-logits)), (stats, logits)

    (loss, (stats, logits)), grads = jax.value_and_grad(loss_fn, has_aux=True)(g.params)
    loss, grads, fake_score = family.layout.replica_mean((loss, grads, jnp.mean(logits)))
    new_g = _step(family, family.g_tx, g, grads).replace(stats=stats)
    metrics = {"g_loss": loss, "g_grad_norm": optax.global_norm(grads), "g_fake_score": fake_score}
    return _with_net(state, "G", new_g), metrics


def path_length_update(family: StyleGAN2, state: TrainState, arrays: dict[str, Array], key: Array) -> tuple:
    """Greg: path-length regularisation, scaled by pl_every (lazy), on batch / pl_batch_shrink fakes."""
    k_lat, k_g, k_noise = jax.random.split(key, 3)
    g = state.nets["G"]
    n = max(family.replica_batch // family.pl_batch_shrink, 1)
    z, c = _latents(family, arrays, k_lat, n)
    pl_mean = state.extra["pl_mean"]

    def loss_fn(params: Any) -> tuple[Array, tuple]:
        k_map, k_synth = jax.random.split(k_g)
        ws, stats = mapped_ws(family, g, params, z, c, k_map)
        # J_w^T y by one pullback of the synthesis at these ws (the reference's autograd.grad, create_graph).
        images, pullback = jax.vjp(lambda w: synthesis(family, params, stats, w, k_synth), ws)
        h, w = images.shape[1:3]
        pl_noise = jax.random.normal(k_noise, images.shape, images.dtype) / jnp.sqrt(h * w)
        (pl_grads,) = pullback(pl_noise)
        lengths = jnp.sqrt(jnp.mean(jnp.sum(jnp.square(pl_grads), axis=2), axis=1))
        new_mean = pl_mean + family.pl_decay * (family.layout.replica_mean(jnp.mean(lengths)) - pl_mean)
        penalty = jnp.mean(jnp.square(lengths - new_mean))  # as the reference: the gradient flows through the mean
        return penalty * family.pl_weight * family.pl_every, (stats, penalty, jax.lax.stop_gradient(new_mean))

    (_, (stats, penalty, new_mean)), grads = jax.value_and_grad(loss_fn, has_aux=True)(g.params)
    penalty, grads = family.layout.replica_mean((penalty, grads))
    new_g = _step(family, family.g_tx, g, grads).replace(stats=stats)
    metrics = {"pl_penalty": penalty, "pl_mean": new_mean, "g_reg_grad_norm": optax.global_norm(grads)}
    return _with_net(state, "G", new_g, pl_mean=new_mean), metrics


def _signs(family: StyleGAN2, state: TrainState, logits: Array) -> dict[str, Array]:
    """ADA's statistics: the running sum and count of sign(D(real)) since the last adjustment."""
    total = family.layout.replica_mean(jnp.sum(jnp.sign(logits)))
    count = family.layout.replica_mean(jnp.asarray(logits.shape[0], jnp.float32))
    return {
        "ada_sign_sum": state.extra["ada_sign_sum"] + total,
        "ada_sign_count": state.extra["ada_sign_count"] + count,
    }


def critic_main(family: StyleGAN2, state: TrainState, arrays: dict[str, Array], key: Array) -> tuple:
    """Dmain: minimise D's logits of fakes (G frozen; w_avg still tracks, as the reference's G in train mode)
    and maximise those of reals."""
    k_lat, k_g, k_aug_fake, k_aug_real = jax.random.split(key, 4)
    g, d, p = state.nets["G"], state.nets["D"], state.extra["augment_p"]
    z, c = _latents(family, arrays, k_lat, family.replica_batch)
    fakes, g_stats = run_generator(family, g, g.params, z, c, k_g)
    fakes = jax.lax.stop_gradient(fakes)
    x_real, c_real = _reals(family, state, arrays)

    def loss_fn(params: Any) -> tuple[Array, tuple]:
        fake_logits = run_critic(family, params, fakes, c, p, k_aug_fake)
        real_logits = run_critic(family, params, x_real, c_real, p, k_aug_real)
        loss = jnp.mean(jax.nn.softplus(fake_logits)) + jnp.mean(jax.nn.softplus(-real_logits))
        return loss, (fake_logits, real_logits)

    (loss, (fake_logits, real_logits)), grads = jax.value_and_grad(loss_fn, has_aux=True)(d.params)
    scores = (jnp.mean(real_logits), jnp.mean(fake_logits))
    loss, grads, (real_score, fake_score) = family.layout.replica_mean((loss, grads, scores))
    new_d = _step(family, family.d_tx, d, grads)
    state = _with_net(state, "D", new_d, **_signs(family, state, real_logits))
    state = _with_net(state, "G", state.nets["G"].replace(stats=g_stats))
    metrics = {"d_loss": loss, "d_grad_norm": optax.global_norm(grads), "d_real": real_score, "d_fake": fake_score}
    return state, metrics


def r1_update(family: StyleGAN2, state: TrainState, arrays: dict[str, Array], key: Array) -> tuple:
    """Dreg: R1 at the (un-augmented) reals, γ/2 · |∇_x D|², scaled by r1_every (lazy)."""
    d, p = state.nets["D"], state.extra["augment_p"]
    x_real, c_real = _reals(family, state, arrays)

    def loss_fn(params: Any) -> tuple[Array, Array]:
        def summed(x: Array) -> tuple[Array, Array]:
            logits = run_critic(family, params, x, c_real, p, key)
            return jnp.sum(logits), logits

        grads_x, logits = jax.grad(summed, has_aux=True)(x_real)
        penalty = jnp.mean(jnp.sum(jnp.square(grads_x), axis=(1, 2, 3)))
        return penalty * (family.r1_gamma / 2) * family.r1_every, (penalty, logits)

    (_, (penalty, logits)), grads = jax.value_and_grad(loss_fn, has_aux=True)(d.params)
    penalty, grads = family.layout.replica_mean((penalty, grads))
    state = _with_net(state, "D", _step(family, family.d_tx, d, grads), **_signs(family, state, logits))
    return state, {"r1_penalty": penalty, "d_reg_grad_norm": optax.global_norm(grads)}


def tick(family: StyleGAN2, state: TrainState) -> tuple[TrainState, Metrics]:
    """After the phases: G's EMA, the image counter, and every ada_interval steps ADA's adjustment of p."""
    g, extra = state.nets["G"], dict(state.extra)
    nimg = extra["nimg"].astype(jnp.float32)
    ema_nimg = family.ema_kimg * 1000.0
    if family.ema_rampup > 0:
        ema_nimg = jnp.minimum(ema_nimg, nimg * family.ema_rampup)
    beta = 0.5 ** (family.batch_size / jnp.maximum(ema_nimg, 1e-8))
    ema = jax.tree_util.tree_map(lambda e, w: w + (e - w) * beta, g.ema, g.params)
    extra["nimg"] = extra["nimg"] + family.batch_size
    rt = extra["ada_sign_sum"] / jnp.maximum(extra["ada_sign_count"], 1.0)
    if family.ada_target > 0:
        from gan_jax.ada import adjust_p

        due = (state.step + 1) % family.ada_interval == 0
        adjusted = adjust_p(
            extra["augment_p"], rt, family.batch_size, family.ada_interval, family.ada_target, family.ada_kimg
        )
        extra["augment_p"] = jnp.where(due, adjusted, extra["augment_p"])
        for k in ("ada_sign_sum", "ada_sign_count"):
            extra[k] = jnp.where(due, 0.0, extra[k])
    state = state.replace(nets={**state.nets, "G": g.replace(ema=ema)}, extra=extra)
    return state, {"augment_p": extra["augment_p"], "ada_rt": rt, "kimg": extra["nimg"] / 1000.0}


# --- sampling -------------------------------------------------------------------------------------------------------


def synthesize(
    family: StyleGAN2,
    state: TrainState,
    z: Array,
    c: Array | None,
    key: Array,
    psi: float = 1.0,
    cutoff: int | None = None,
    noise_mode: str = "random",
) -> Array:
    """G_ema's images for z (and c): truncation ψ towards w_avg for layers < cutoff, noise as chosen."""
    g, net = family.generator, state.nets["G"]
    variables = {"params": net.sampling_params, "stats": net.stats}
    ws = g.apply(variables, z, c, truncation_psi=psi, truncation_cutoff=cutoff, method=g.mapping)
    return g.apply(variables, ws, noise_mode=noise_mode, method=g.synthesis, rngs={"noise": key})


@functools.lru_cache(maxsize=16)
def make_sample_fn(family: StyleGAN2, batch_size: int) -> Callable[..., Array]:
    """Jitted G_ema: `fn(state, key[, labels])` -> batch_size images (labels drawn uniformly when not given),
    with the family's truncation (ψ = 1 by default, as the reference's metrics)."""

    def run(state: TrainState, key: Array, labels: Array | None = None) -> Array:
        k_z, k_c, k_noise = jax.random.split(key, 3)
        z = jax.random.normal(k_z, (batch_size, family.z_dim), jnp.float32)
        if family.class_conditional and labels is None:
            labels = jax.random.randint(k_c, (batch_size,), 0, family.num_classes)
        c = family.condition(labels)
        return synthesize(family, state, z, c, k_noise, family.truncation_psi, family.truncation_cutoff)

    return jax.jit(run, compiler_options=cpu_compiler_options())


@functools.lru_cache(maxsize=16)
def make_critic_fn(family: StyleGAN2) -> Callable[..., Array]:
    """Jitted D without augmentation: `fn(state, x, labels)` -> logits [N] (the evaluator's histograms)."""

    def run(state: TrainState, x: Array, labels: Any = None) -> Array:
        c = family.condition(labels)
        return family.critic.apply({"params": state.nets["D"].params}, x, c)[:, 0]

    return jax.jit(run, compiler_options=cpu_compiler_options())


# --- building -------------------------------------------------------------------------------------------------------


def lazy_optimizer(cfg: Any, every: int, steps: int, regularized: bool) -> optax.GradientTransformation:
    """The reference's lazy-regularisation rescaling: with a regulariser every k steps, stepping the same Adam,
    lr *= mb_ratio and betas **= mb_ratio, mb_ratio = k / (k + 1)."""
    if not regularized:
        return build_optimizer(cfg, steps)
    ratio = every / (every + 1)
    scaled = dataclasses.replace(cfg, lr=cfg.lr * ratio, b1=cfg.b1**ratio, b2=cfg.b2**ratio)
    return build_optimizer(scaled, steps + -(-steps // every))


def build(cfg: Config, source: Any) -> StyleGAN2:
    """The family from a config: networks from the model registry (model=stylegan2), its training terms from
    the model config, ADA's pipeline from model.augpipe."""
    from gan_jax.ada import spec_from_name

    generator, critic = MODELS.entry(cfg.model.name).obj(cfg.model, source)
    m, steps = cfg.model, cfg.train.steps
    conditional = m.conditioning != "none"
    augmenting = m.ada_target > 0 or m.augment_p > 0
    return StyleGAN2(
        generator=generator,
        critic=critic,
        g_tx=lazy_optimizer(cfg.optim.g, m.pl_every, steps, m.pl_weight > 0),
        d_tx=lazy_optimizer(cfg.optim.d, m.r1_every, steps, m.r1_gamma > 0),
        sample=source.sample,
        z_dim=m.z_dim,
        num_ws=generator.num_ws,
        example_shape=source.example_shape,
        num_classes=source.num_classes if conditional else None,
        batch_size=cfg.train.batch_size,
        r1_gamma=m.r1_gamma,
        r1_every=m.r1_every,
        pl_weight=m.pl_weight,
        pl_every=m.pl_every,
        pl_decay=m.pl_decay,
        pl_batch_shrink=m.pl_batch_shrink,
        style_mixing_prob=m.style_mixing_prob,
        ema_kimg=m.ema_kimg,
        ema_rampup=m.ema_rampup,
        augment=spec_from_name(m.augpipe) if augmenting else None,
        augment_p=m.augment_p,
        ada_target=m.ada_target,
        ada_interval=m.ada_interval,
        ada_kimg=m.ada_kimg,
        truncation_psi=m.truncation_psi,
        truncation_cutoff=m.truncation_cutoff,
        on_nonfinite=cfg.train.on_nonfinite,
    )
