"""The `gan` family: one generator G(z[, y]) and one critic, trained by alternating updates.

Each train step is two phases: `n_critic` critic updates (phase D), then one generator update (phase G). The
loss comes from the loss registry; WGAN-GP, R1 (lazy), weight clipping, ACGAN's class losses, label smoothing
and flips, DiffAugment and instance noise are terms of those updates, switched on by the config. Networks come
from the model registry (models/catalog.py or a plug-in). State: `nets = {"G", "D"}`; G may keep an EMA.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from gan_jax.augment import diff_augment
from gan_jax.config import Config
from gan_jax.families.base import Family, Layout, Metrics, Phase
from gan_jax.losses import AdversarialLoss, critic_targets, get_loss
from gan_jax.models.layers import cpu_compiler_options
from gan_jax.models.packing import PackedCritic
from gan_jax.optimizers import build_optimizer
from gan_jax.registry import MODELS
from gan_jax.regularizers import add_instance_noise, clip_weights, gradient_penalty, instance_noise_std, r1_penalty
from gan_jax.train.state import NetState, TrainState, new_state, run_once

Array = jax.Array
CRITIC_DROPOUT_SALT = 0xD0  # critic dropout keys: fold_in of the update's key (the split keys stay as they were)
CRITIC_VIEW_SALT = 0xA6  # DiffAugment / instance-noise keys, likewise
SampleFn = Callable[[dict[str, Array], Array, int], dict[str, Array]]


@dataclass(frozen=True)
class GAN(Family):
    """Everything static about a one-G-one-critic experiment: modules, optimizers, loss and step settings.

    Hashable and free of arrays, so the train step closes over it and jit never retraces for it. A population
    member's copy may hold traced values (its learning rate, penalty weight) in place of floats."""

    name = "gan"
    nonfinite_quantities = ("d_loss", "d_grad", "d_params", "g_loss", "g_grad", "g_params")

    generator: nn.Module
    critic: nn.Module
    g_tx: optax.GradientTransformation
    d_tx: optax.GradientTransformation
    loss: AdversarialLoss
    loss_name: str
    sample: SampleFn  # the data source's batch sampler (arrays, key, n) -> {"x", ["y"]}
    z_dim: int
    latent: str
    example_shape: tuple[int, ...]
    num_classes: int | None
    batch_size: int
    n_critic: int
    pack: int = 1  # PacGAN: the critic sees batch_size / pack packs of `pack` samples (see models.packing)
    ema_decay: float = 0.0  # > 0 keeps an EMA of G's params in the state
    ema_start: int = 0
    gp_weight: float = 0.0  # > 0 adds the WGAN-GP penalty
    clip_value: float = 0.0  # > 0 clips critic weights after each update (WGAN)
    label_smoothing: float = 0.0
    label_flip_prob: float = 0.0
    on_nonfinite: str = "stop"  # the divergence guard: "stop" or "skip" (see train.step.guard_nonfinite)
    # Class-conditional image GANs (model.conditioning): batches carry int labels `y` in 0..num_classes-1.
    conditioning: str = "none"  # none | cgan | acgan | projection
    aux_weights: tuple[float, float, float] = (1.0, 1.0, 1.0)  # ACGAN class-loss weights: D real, D fake, G
    r1_gamma: float = 0.0  # > 0: R1 penalty on real data
    r1_every: int = 1  # lazy R1: every this many generator steps (scaled by it)
    augment: tuple[str, ...] = ()  # DiffAugment ops applied to every critic input
    instance_noise: float = 0.0  # std of the noise added to every critic input at step 0
    instance_noise_steps: int = 0  # linear decay of that std to 0 (0: constant)
    layout: Layout = field(default_factory=Layout)

    @property
    def conditional(self) -> bool:
        """Whether batches carry a condition `y` that G and D receive."""
        return self.num_classes is not None

    @property
    def class_conditional(self) -> bool:
        """Whether G and D take class labels (model.conditioning)."""
        return self.num_classes is not None

    @property
    def replica_batch(self) -> int:
        return self.layout.per_replica(self.batch_size)

    def dummy_condition(self, n: int) -> Any:
        """A condition of the right shapes for `n` examples (initialisation); None for unconditional GANs."""
        return jnp.zeros((n,), jnp.int32) if self.num_classes else None

    # --- the contract -------------------------------------------------------------------------------------------

    def init(self, seed: int) -> TrainState:
        """Initialises both networks and optimizers from `seed` alone: same seed, same state."""
        root = jax.random.PRNGKey(seed)
        k_g, k_d, k_drop, k_run = jax.random.split(root, 4)
        n = 2 * self.pack  # whole packs for a critic that packs its inputs (parameter shapes do not depend on n)
        z = jnp.zeros((n, self.z_dim), jnp.float32)
        x = jnp.zeros((n, *self.example_shape), jnp.float32)
        y = self.dummy_condition(n)
        g_vars = run_once(
            lambda k, kd: self.generator.init({"params": k, "dropout": kd, "sample": kd}, z, y, train=False),
            k_g,
            k_drop,
        )
        d_vars = run_once(lambda k: self.critic.init({"params": k}, x, y, train=False), k_d)
        g_params, d_params = g_vars["params"], d_vars["params"]
        ema = jax.tree_util.tree_map(jnp.copy, g_params) if self.ema_decay > 0 else None  # own buffers: donated
        nets = {
            "G": NetState(g_params, dict(g_vars.get("batch_stats", {})), self.g_tx.init(g_params), ema),
            "D": NetState(d_params, dict(d_vars.get("batch_stats", {})), self.d_tx.init(d_params)),
        }
        return new_state(k_run, nets)

    def phases(self) -> tuple[Phase, ...]:
        return (
            Phase("D", lambda s, a, k: critic_update(self, s, a, k), repeat=self.n_critic),
            Phase("G", lambda s, a, k: generator_update(self, s, a, k)),
        )

    def finite_checks(self, metrics: Metrics, state: TrainState) -> tuple[Array, ...]:
        """Gradients are judged by their global norm, so a norm that overflows float32 counts as non-finite too."""
        g, d = state.nets["G"], state.nets["D"]
        return (
            jnp.all(jnp.isfinite(metrics["d_loss"])),
            jnp.all(jnp.isfinite(metrics["d_grad_norm"])),
            all_finite((d.params, d.stats)),
            jnp.isfinite(metrics["g_loss"]),
            jnp.isfinite(metrics["g_grad_norm"]),
            all_finite((g.params, g.stats, g.ema)),
        )

    def sampler(self, batch_size: int) -> Callable[..., Array]:
        return make_sample_fn(self, batch_size)

    def critic_scorer(self) -> Callable[..., Array]:
        """The critic in evaluation mode, `fn(state, x, y)` -> raw outputs: what the evaluator's D-output
        histograms show."""
        return make_critic_fn(self)

    def evaluator(self, cfg: Config, source: Any) -> Any:
        from gan_jax.evaluation import Evaluator

        return Evaluator(self, source, cfg)

    def generator_report(self, adversarial: Array, extra: Array) -> Metrics:
        """Extra generator metrics (the ctgan family: the two parts of G's loss); none here."""
        del adversarial, extra
        return {}

    def describe(self, state: TrainState) -> dict[str, Any]:
        from gan_jax.train.state import count_params

        return {"g_params": count_params(state.nets["G"].params), "d_params": count_params(state.nets["D"].params)}


# --- networks in training and evaluation mode ---------------------------------------------------------------------


def sample_latent(key: Array, n: int, z_dim: int, kind: str) -> Array:
    if kind == "uniform":
        return jax.random.uniform(key, (n, z_dim), minval=-1.0, maxval=1.0)
    return jax.random.normal(key, (n, z_dim))


def _variables(params: Any, stats: Any) -> dict[str, Any]:
    return {"params": params, "batch_stats": stats} if stats else {"params": params}


def _generator_rngs(key: Array) -> dict[str, Array]:
    """'dropout' for dropout layers, 'sample' for stochastic output heads (the tabular Gumbel-softmax)."""
    return {"dropout": key, "sample": jax.random.fold_in(key, 1)}


def generate(gan: GAN, params: Any, stats: Any, z: Array, y: Any, key: Array, *, train: bool) -> tuple[Array, Any]:
    """Runs G. In training mode batch-norm uses batch statistics and returns updated running averages."""
    if not train:
        return gan.generator.apply(_variables(params, stats), z, y, train=False, rngs=_generator_rngs(key)), stats
    x, stats, _ = generator_extra_loss(gan, params, stats, z, y, key)
    return x, stats


def generator_extra_loss(gan: GAN, params: Any, stats: Any, z: Array, y: Any, key: Array) -> tuple[Array, Any, Array]:
    """G in training mode, plus the sum of the losses it sows into its 'losses' collection (the tabular
    generator's conditional cross-entropy; 0 for generators that sow none). Returns (x, stats, extra)."""
    x, updates = gan.layout.apply(
        gan.generator,
        _variables(params, stats),
        z,
        y,
        train=True,
        rngs=_generator_rngs(key),
        mutable=["batch_stats", "losses"],
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
    logits, updates = gan.layout.apply(
        gan.critic, _variables(params, stats), x, y, train=True, rngs=rngs, mutable=mutable
    )
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


def _weight_on(weight: float | Array) -> bool:
    """A regularizer is on when its weight is positive; a traced per-member weight (a population) is always on."""
    return isinstance(weight, jax.Array) or weight > 0


def _cat(a: Any, b: Any) -> Any:
    """Concatenates two batches along the batch axis; conditions may be arrays, dicts of arrays or None."""
    return jax.tree_util.tree_map(lambda u, v: jnp.concatenate([u, v]), a, b)


def all_finite(tree: Any) -> Array:
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(tree)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.bool_(True)


def _with_net(state: TrainState, name: str, **changes: Any) -> TrainState:
    return state.replace(nets={**state.nets, name: state.nets[name].replace(**changes)})


# --- the two phases -----------------------------------------------------------------------------------------------


def critic_update(gan: GAN, state: TrainState, arrays: dict[str, Array], key: Array) -> tuple[TrainState, Metrics]:
    k_data, k_z, k_drop, k_gp, k_flip = jax.random.split(key, 5)
    k_d_drop = jax.random.fold_in(key, CRITIC_DROPOUT_SALT)
    g, d = state.nets["G"], state.nets["D"]
    n = gan.replica_batch
    batch = gan.layout.split_batch(gan.sample(arrays, k_data, n))
    x_real, y = batch["x"], batch.get("y") if gan.conditional else None
    z = gan.layout.split_batch(sample_latent(k_z, n, gan.z_dim, gan.latent))
    x_fake, g_stats = generate(gan, g.params, g.stats, z, y, k_drop, train=True)
    x_fake = jax.lax.stop_gradient(x_fake)
    k_view = jax.random.fold_in(key, CRITIC_VIEW_SALT)
    x_real = critic_view(gan, x_real, jax.random.fold_in(k_view, 0), state.step)
    x_fake = critic_view(gan, x_fake, jax.random.fold_in(k_view, 1), state.step)
    # One target per critic logit: per pack with model.pack > 1, so smoothing and flips act on whole packs.
    t_real, t_fake = critic_targets(k_flip, n // gan.pack, gan.label_smoothing, gan.label_flip_prob)

    def loss_fn(d_params: Any) -> tuple[Array, tuple[Any, Metrics]]:
        real, fake, stats, cls_real, cls_fake = _critic_logits(gan, d_params, d.stats, x_real, x_fake, y, k_d_drop)
        loss = gan.loss.critic(real, fake, t_real, t_fake)
        aux = {"d_real": jnp.mean(real), "d_fake": jnp.mean(fake)}
        thr = gan.loss.decision_threshold
        aux |= {"acc_real": jnp.mean(real > thr), "acc_fake": jnp.mean(fake < thr)}
        # Added one by one in this order (gp, class terms, R1): the float sums are those of the original step.
        terms = _gradient_penalty_terms(gan, d_params, stats, x_real, x_fake, y, k_gp)
        terms += _critic_class_terms(gan, cls_real, cls_fake, y)
        terms += _r1_terms(gan, d_params, stats, x_real, y, k_gp, state.step)
        for value, metrics in terms:
            loss, aux = loss + value, aux | metrics
        return loss, (stats, aux)

    (loss, (d_stats, aux)), grads = jax.value_and_grad(loss_fn, has_aux=True)(d.params)
    loss, aux, grads = gan.layout.replica_mean((loss, aux, grads))
    updates, d_opt = gan.d_tx.update(grads, d.opt, d.params)
    d_params = optax.apply_updates(d.params, updates)
    if gan.clip_value > 0:
        d_params = clip_weights(d_params, gan.clip_value)
    state = _with_net(_with_net(state, "D", params=d_params, stats=d_stats, opt=d_opt), "G", stats=g_stats)
    return state, {"d_loss": loss, "d_grad_norm": optax.global_norm(grads), **aux}


def _critic_logits(gan: GAN, d_params: Any, d_stats: Any, x_real: Array, x_fake: Array, y: Any, key: Array) -> tuple:
    """(real logits, fake logits, updated stats, real class logits, fake class logits) of one critic update."""
    if d_stats:
        # Real and fake go through D separately, as in the PyTorch references: each is normalised by its own
        # batch statistics, and the running averages (and spectral-norm vectors) are threaded from the
        # first call into the second.
        real, stats, cls_real = criticize_with_classes(gan, d_params, d_stats, x_real, y, key)
        fake, stats, cls_fake = criticize_with_classes(gan, d_params, stats, x_fake, y, jax.random.fold_in(key, 1))
        return real, fake, stats, cls_real, cls_fake
    # Without batch statistics examples are independent: one call on both halves is the same function and runs
    # as one larger matrix product.
    both, stats, cls_both = criticize_with_classes(
        gan, d_params, d_stats, jnp.concatenate([x_real, x_fake]), _cat(y, y), key
    )
    real, fake = jnp.split(both, 2)
    cls_real, cls_fake = jnp.split(cls_both, 2) if cls_both is not None else (None, None)
    return real, fake, stats, cls_real, cls_fake


Terms = list[tuple[Array, Metrics]]  # loss terms with their metrics, added to a loss in order


def _gradient_penalty_terms(
    gan: GAN, d_params: Any, stats: Any, x_real: Array, x_fake: Array, y: Any, k_gp: Array
) -> Terms:
    if not _weight_on(gan.gp_weight):
        return []
    k_gp_drop = jax.random.fold_in(k_gp, 1)
    gp = gradient_penalty(lambda x: criticize(gan, d_params, stats, x, y, k_gp_drop)[0], x_real, x_fake, k_gp, gan.pack)
    return [(gan.gp_weight * gp, {"gp": gp})]


def _critic_class_terms(gan: GAN, cls_real: Any, cls_fake: Any, y: Any) -> Terms:
    """ACGAN: D also classifies real images and the fakes drawn for each label."""
    if cls_real is None:
        return []
    (ce_real, acc_real), (ce_fake, acc_fake) = class_loss(cls_real, y), class_loss(cls_fake, y)
    w_real, w_fake, _ = gan.aux_weights
    metrics = {"d_cls_real": ce_real, "d_cls_fake": ce_fake, "cls_acc_real": acc_real, "cls_acc_fake": acc_fake}
    return [(w_real * ce_real, metrics), (w_fake * ce_fake, {})]


def _r1_terms(gan: GAN, d_params: Any, stats: Any, x_real: Array, y: Any, k_gp: Array, step: Array) -> Terms:
    if not _weight_on(gan.r1_gamma):
        return []
    k_r1_drop = jax.random.fold_in(k_gp, 2)

    def r1_now() -> Array:
        return r1_penalty(lambda x: criticize(gan, d_params, stats, x, y, k_r1_drop)[0], x_real)

    # Lazy regularisation: every r1_every-th generator step, scaled by r1_every to keep its strength.
    r1 = jax.lax.cond(step % gan.r1_every == 0, r1_now, lambda: jnp.zeros((), jnp.float32))
    return [(0.5 * gan.r1_gamma * gan.r1_every * r1, {"r1": r1})]


def update_ema(gan: GAN, state: TrainState, g_params: Any) -> Any:
    """EMA of G's weights (Karras et al. 2018; Yazici et al. 2019); it equals the weights until `ema_start`."""
    ema = state.nets["G"].ema
    if ema is None:
        return None
    decay = jnp.where(state.step >= gan.ema_start, gan.ema_decay, 0.0)
    return jax.tree_util.tree_map(lambda e, p: decay * e + (1.0 - decay) * p, ema, g_params)


def generator_update(gan: GAN, state: TrainState, arrays: dict[str, Array], key: Array) -> tuple[TrainState, Metrics]:
    k_data, k_z, k_drop = jax.random.split(key, 3)
    k_d_drop = jax.random.fold_in(key, CRITIC_DROPOUT_SALT)
    g, d = state.nets["G"], state.nets["D"]
    n = gan.replica_batch
    y = gan.layout.split_batch(gan.sample(arrays, k_data, n)).get("y") if gan.conditional else None
    z = gan.layout.split_batch(sample_latent(k_z, n, gan.z_dim, gan.latent))
    k_view = jax.random.fold_in(jax.random.fold_in(key, CRITIC_VIEW_SALT), 1)

    def loss_fn(g_params: Any) -> tuple[Array, tuple]:
        x_fake, g_stats, extra = generator_extra_loss(gan, g_params, g.stats, z, y, k_drop)
        x_fake = critic_view(gan, x_fake, k_view, state.step)
        # D's statistics are left unchanged by G's update.
        fake, _, cls_fake = criticize_with_classes(gan, d.params, d.stats, x_fake, y, k_d_drop)
        adversarial = gan.loss.generator(fake)
        cls = {}
        if cls_fake is not None:  # ACGAN: G is also rewarded for fakes the classifier assigns to their label
            cls["g_cls"], cls["g_cls_acc"] = class_loss(cls_fake, y)
            extra = extra + gan.aux_weights[2] * cls["g_cls"]
        return adversarial + extra, (g_stats, adversarial, extra, cls)

    (loss, (g_stats, adversarial, extra, cls)), grads = jax.value_and_grad(loss_fn, has_aux=True)(g.params)
    loss, grads = gan.layout.replica_mean((loss, grads))
    updates, g_opt = gan.g_tx.update(grads, g.opt, g.params)
    g_params = optax.apply_updates(g.params, updates)
    ema = update_ema(gan, state, g_params)
    state = _with_net(state, "G", params=g_params, stats=g_stats, opt=g_opt, ema=ema)
    metrics = {"g_loss": loss, "g_grad_norm": optax.global_norm(grads)}
    metrics |= gan.layout.replica_mean(gan.generator_report(adversarial, extra))
    return state, metrics | gan.layout.replica_mean(cls)


# --- sampling -------------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def make_sample_fn(gan: GAN, batch_size: int) -> Callable[..., Array]:
    """Jitted G in evaluation mode (running batch-norm statistics); one fixed batch size, one compilation.
    Cached per (gan, batch_size): the evaluators of a population's members share one compiled sampler.

    `fn(state, key)`, or for class-conditional GANs `fn(state, key, labels)` with int labels (batch_size,);
    without labels a conditional G gets labels drawn uniformly over the classes."""

    def run(state: TrainState, key: Array, labels: Array | None = None) -> Array:
        k_z, k_y = jax.random.split(key) if gan.class_conditional else (key, key)
        z = sample_latent(k_z, batch_size, gan.z_dim, gan.latent)
        y = None
        if gan.class_conditional:
            y = jax.random.randint(k_y, (batch_size,), 0, gan.num_classes) if labels is None else labels
        g = state.nets["G"]
        return generate(gan, g.sampling_params, g.stats, z, y, key, train=False)[0]

    return jax.jit(run, compiler_options=cpu_compiler_options())


@functools.lru_cache(maxsize=16)
def make_critic_fn(gan: GAN) -> Callable[..., Array]:
    """Jitted D in evaluation mode (running batch-norm statistics, no power iteration, no dropout, no DiffAugment
    or instance noise): `fn(state, x, y)` gives one raw output (logit) per example, per pack with model.pack > 1.
    Cached per gan, as the sampler, so a population's member evaluators share one compilation."""

    def run(state: TrainState, x: Array, y: Any = None) -> Array:
        d = state.nets["D"]
        return gan.critic.apply(_variables(d.params, d.stats), x, y, train=False)

    return jax.jit(run, compiler_options=cpu_compiler_options())


# --- building -------------------------------------------------------------------------------------------------------


def build_models(cfg: Config, source: Any) -> tuple[nn.Module, nn.Module]:
    """Generator and critic from the model registry; with model.pack > 1 the critic is wrapped to judge packs
    (PacGAN) unless the model packs its inputs itself (CTGAN's critic)."""
    entry = MODELS.entry(cfg.model.name)
    generator, critic = entry.obj(cfg.model, source)
    if cfg.model.pack > 1 and not (entry.info or {}).get("packs_itself"):
        critic = PackedCritic(critic=critic, pack=cfg.model.pack)
    return generator, critic


def gan_fields(cfg: Config, source: Any) -> dict[str, Any]:
    """The GAN's fields from a config: what a subclass (the ctgan family) extends."""
    generator, critic = build_models(cfg, source)
    loss = cfg.loss
    return {
        "generator": generator,
        "critic": critic,
        "g_tx": build_optimizer(cfg.optim.g, cfg.train.steps),
        "d_tx": build_optimizer(cfg.optim.d, cfg.train.steps * cfg.train.n_critic),
        "loss": get_loss(loss.name),
        "loss_name": loss.name,
        "sample": source.sample,
        "z_dim": cfg.model.z_dim,
        "latent": cfg.model.latent,
        "example_shape": source.example_shape,
        "num_classes": source.num_classes if cfg.model.conditioning != "none" else None,
        "conditioning": cfg.model.conditioning,
        "aux_weights": (loss.aux_real_weight, loss.aux_fake_weight, loss.aux_g_weight),
        "r1_gamma": loss.r1_gamma,
        "r1_every": loss.r1_every,
        "augment": tuple(cfg.train.augment),
        "instance_noise": cfg.train.instance_noise,
        "instance_noise_steps": cfg.train.instance_noise_steps,
        "batch_size": cfg.train.batch_size,
        "n_critic": cfg.train.n_critic,
        "pack": cfg.model.pack,
        "ema_decay": cfg.train.ema_decay,
        "ema_start": cfg.train.ema_start,
        "on_nonfinite": cfg.train.on_nonfinite,
        "gp_weight": loss.gp_weight if loss.name == "wgan_gp" else 0.0,
        "clip_value": loss.clip_value if loss.name == "wgan" else 0.0,
        "label_smoothing": loss.label_smoothing,
        "label_flip_prob": loss.label_flip_prob,
    }


def build(cfg: Config, source: Any) -> GAN:
    return GAN(**gan_fields(cfg, source))
