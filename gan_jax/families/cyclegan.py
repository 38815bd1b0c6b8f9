"""The `cyclegan` family: unpaired image-to-image translation (Zhu et al. 2017), as junyanz/pytorch-CycleGAN-
and-pix2pix's `models/cycle_gan_model.py` trains it.

Two generators G_ab: A -> B and G_ba: B -> A, two critics D_a (real A vs G_ba(B)) and D_b (real B vs G_ab(A)).
A train step is two phases, in the reference's order:

* **G**: fake_b = G_ab(a), rec_a = G_ba(fake_b), fake_a = G_ba(b), rec_b = G_ab(fake_a), identities G_ab(b) and
  G_ba(a); loss = adversarial(D_b(fake_b)) + adversarial(D_a(fake_a)) + λ·(|rec_a - a| + |rec_b - b|)
  + identity·λ·(|G_ab(b) - b| + |G_ba(a) - a|), critics frozen. The fakes of this forward pass are kept in
  `state.extra` for phase D, as the reference's `optimize_parameters` reuses them.
* **D**: each critic judges its real images against fakes drawn from its 50-image history pool (Shrivastava
  et al. 2017; the reference's `ImagePool`), which the step's fakes then enter. The pools live in
  `state.extra`, so they are checkpointed and a resumed run continues them exactly.

The reference's GANLoss is plain MSE (lsgan) or BCE (vanilla) with D's loss halved; the loss registry's lsgan
follows Mao et al.'s ½ coding instead, so `_REFERENCE_SCALES` rescales each term to equal the reference's.
Networks: `models/cyclegan.py` (ResNet generator, PatchGAN critic), parameter counts equal the reference's.
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

from gan_jax.config import Config
from gan_jax.families.base import Family, Layout, Metrics, Phase
from gan_jax.losses import AdversarialLoss, get_loss
from gan_jax.models.layers import cpu_compiler_options
from gan_jax.optimizers import build_optimizer
from gan_jax.registry import MODELS
from gan_jax.train.state import NetState, TrainState, new_state, run_once

Array = jax.Array
GENERATORS = ("G_ab", "G_ba")
CRITICS = ("D_a", "D_b")
# (generator term, critic loss) factors that make a registry loss equal the reference's GANLoss: its lsgan is
# MSE without Mao et al.'s ½ (ours has ½ in both), its critic loss is (real + fake) / 2 (ours: real + fake).
_REFERENCE_SCALES = {"lsgan": (2.0, 1.0)}
_DEFAULT_SCALES = (1.0, 0.5)
POOL_SALT = 0x9001  # the pools' key: fold_in(fold_in(run key, step), POOL_SALT)


@dataclass(frozen=True)
class CycleGAN(Family):
    """Everything static about a CycleGAN run (hashable, array-free; see gan.GAN for why)."""

    name = "cyclegan"
    nonfinite_quantities = ("g_loss", "g_grad", "g_params", "d_loss", "d_grad", "d_params")

    generator: nn.Module  # one architecture, two parameter sets (G_ab, G_ba)
    critic: nn.Module  # likewise (D_a, D_b)
    g_tx: optax.GradientTransformation
    d_tx: optax.GradientTransformation
    loss: AdversarialLoss
    loss_name: str
    sample: Callable[[dict[str, Array], Array, int], dict[str, Array]]  # (arrays, key, n) -> {"a", "b"}
    example_shape: tuple[int, ...]
    batch_size: int
    cycle_weight: float = 10.0  # λ_A = λ_B
    identity_weight: float = 0.5  # times λ (0: no identity loss)
    pool_size: int = 50  # per critic (0: the critic sees only the newest fakes)
    on_nonfinite: str = "stop"
    layout: Layout = field(default_factory=Layout)

    @property
    def replica_batch(self) -> int:
        return self.layout.per_replica(self.batch_size)

    @property
    def scales(self) -> tuple[float, float]:
        return _REFERENCE_SCALES.get(self.loss_name, _DEFAULT_SCALES)

    # --- the contract -------------------------------------------------------------------------------------------

    def init(self, seed: int) -> TrainState:
        """Four networks, their optimizers, empty pools and the last fakes, from `seed` alone."""
        k_ab, k_ba, k_a, k_b, k_run = jax.random.split(jax.random.PRNGKey(seed), 5)
        x = jnp.zeros((1, *self.example_shape), jnp.float32)
        nets = {}
        for name, module, key in (
            ("G_ab", self.generator, k_ab),
            ("G_ba", self.generator, k_ba),
            ("D_a", self.critic, k_a),
            ("D_b", self.critic, k_b),
        ):
            variables = run_once(lambda k, m=module: m.init({"params": k}, x, train=False), key)
            tx = self.g_tx if name in GENERATORS else self.d_tx
            params = variables["params"]
            nets[name] = NetState(params, dict(variables.get("batch_stats", {})), tx.init(params))
        return new_state(k_run, nets, self._initial_extra())

    def _initial_extra(self) -> dict[str, Any]:
        """Empty pools, and the last G phase's batch (each its own buffer: the train step donates the state)."""

        def images(n: int) -> Array:
            return jnp.zeros((n, *self.example_shape), jnp.float32)

        extra: dict[str, Any] = {f"pool_{d}": images(self.pool_size) for d in "ab"}
        extra |= {f"pool_count_{d}": jnp.zeros((), jnp.int32) for d in "ab"}
        return extra | {f"{kind}_{d}": images(self.batch_size) for kind in ("fake", "real") for d in "ab"}

    def phases(self) -> tuple[Phase, ...]:
        return (
            Phase("G", lambda s, a, k: generator_update(self, s, a, k)),
            Phase("D", lambda s, a, k: critic_update(self, s, k)),
        )

    def finite_checks(self, metrics: Metrics, state: TrainState) -> tuple[Array, ...]:
        from gan_jax.families.gan import all_finite

        nets = state.nets
        return (
            jnp.isfinite(metrics["g_loss"]),
            jnp.isfinite(metrics["g_grad_norm"]),
            all_finite([(nets[n].params, nets[n].stats) for n in GENERATORS]),
            jnp.isfinite(metrics["d_loss"]),
            jnp.isfinite(metrics["d_grad_norm"]),
            all_finite([(nets[n].params, nets[n].stats) for n in CRITICS]),
        )

    def sampler(self, batch_size: int) -> Callable[..., Array]:
        """`fn(state, key, x)`: G_ab's translations of a batch of A images (`translator` for either way)."""
        translate = make_translator(self, "a2b")  # jitted once per family and direction
        return lambda state, key, x: translate(state, x)[0]

    def translator(self, direction: str) -> Callable[[TrainState, Array], tuple[Array, Array]]:
        """Jitted `fn(state, x) -> (translation, reconstruction)` for direction a2b or b2a (evaluation mode)."""
        return make_translator(self, direction)

    def evaluator(self, cfg: Config, source: Any) -> Any:
        from gan_jax.families.cyclegan_eval import TranslationEvaluator

        return TranslationEvaluator(self, source, cfg)

    def write_samples(self, sample_cfg: Any, run: Config, source: Any, state: TrainState) -> Any:
        """`gan-jax-sample` for this family: translations of `input=` and their grid (families own their CLI
        output, so the CLI names no family)."""
        from gan_jax.families.cyclegan_eval import write_translations

        return write_translations(self, sample_cfg, run, source, state)


# --- networks -----------------------------------------------------------------------------------------------------


def _variables(net: NetState, params: Any) -> dict[str, Any]:
    return {"params": params, "batch_stats": net.stats} if net.stats else {"params": params}


def _run_net(family: CycleGAN, module: nn.Module, net: NetState, params: Any, x: Array) -> tuple[Array, Any]:
    """A network in training mode (instance norm needs no state; batch norm returns its updated averages)."""
    if not net.stats:
        return family.layout.apply(module, {"params": params}, x, train=True), net.stats
    out, updates = family.layout.apply(module, _variables(net, params), x, train=True, mutable=["batch_stats"])
    return out, dict(updates["batch_stats"])


def _with_nets(state: TrainState, **changes: NetState) -> TrainState:
    return state.replace(nets={**state.nets, **changes})


def l1(x: Array, y: Array) -> Array:
    return jnp.mean(jnp.abs(x - y))


# --- phase G ------------------------------------------------------------------------------------------------------


def _translations(family: CycleGAN, state: TrainState, params: dict[str, Any], a: Array, b: Array) -> tuple:
    """Every generator output of the G phase: fakes, reconstructions, identities, and G's updated stats."""
    nets, g = state.nets, family.generator
    use_idt = family.identity_weight > 0
    if nets["G_ab"].stats or not use_idt:  # batch norm: each call on its own, in the reference's order
        fake_b, s_ab = _run_net(family, g, nets["G_ab"], params["G_ab"], a)
        rec_a, s_ba = _run_net(family, g, nets["G_ba"], params["G_ba"], fake_b)
        fake_a, s_ba = _run_net(family, g, nets["G_ba"].replace(stats=s_ba), params["G_ba"], b)
        rec_b, s_ab = _run_net(family, g, nets["G_ab"].replace(stats=s_ab), params["G_ab"], fake_a)
        idt_b = idt_a = None
        if use_idt:
            idt_b, s_ab = _run_net(family, g, nets["G_ab"].replace(stats=s_ab), params["G_ab"], b)
            idt_a, s_ba = _run_net(family, g, nets["G_ba"].replace(stats=s_ba), params["G_ba"], a)
        return fake_a, fake_b, rec_a, rec_b, idt_a, idt_b, {"G_ab": s_ab, "G_ba": s_ba}
    # Instance norm treats every image alone, so a generator's calls can share one batch (same outputs).
    fake_b, idt_b = jnp.split(_run_net(family, g, nets["G_ab"], params["G_ab"], jnp.concatenate([a, b]))[0], 2)
    fake_a, idt_a = jnp.split(_run_net(family, g, nets["G_ba"], params["G_ba"], jnp.concatenate([b, a]))[0], 2)
    rec_a = _run_net(family, g, nets["G_ba"], params["G_ba"], fake_b)[0]
    rec_b = _run_net(family, g, nets["G_ab"], params["G_ab"], fake_a)[0]
    return fake_a, fake_b, rec_a, rec_b, idt_a, idt_b, {"G_ab": nets["G_ab"].stats, "G_ba": nets["G_ba"].stats}


def generator_update(
    family: CycleGAN, state: TrainState, arrays: dict[str, Array], key: Array
) -> tuple[TrainState, Metrics]:
    batch = family.layout.split_batch(family.sample(arrays, key, family.replica_batch))
    a, b = batch["a"], batch["b"]
    nets, lam = state.nets, family.cycle_weight
    g_scale, _ = family.scales

    def loss_fn(params: dict[str, Any]) -> tuple[Array, tuple]:
        fake_a, fake_b, rec_a, rec_b, idt_a, idt_b, stats = _translations(family, state, params, a, b)
        # The critics judge without updating their statistics (their update is phase D's).
        judged_b = _run_net(family, family.critic, nets["D_b"], nets["D_b"].params, fake_b)[0]
        judged_a = _run_net(family, family.critic, nets["D_a"], nets["D_a"].params, fake_a)[0]
        parts = {
            "g_adv_ab": g_scale * family.loss.generator(judged_b),
            "g_adv_ba": g_scale * family.loss.generator(judged_a),
            "cycle_a": l1(rec_a, a),
            "cycle_b": l1(rec_b, b),
        }
        loss = parts["g_adv_ab"] + parts["g_adv_ba"] + lam * parts["cycle_a"] + lam * parts["cycle_b"]
        if idt_a is not None:
            parts |= {"idt_a": l1(idt_a, a), "idt_b": l1(idt_b, b)}
            loss = loss + family.identity_weight * lam * (parts["idt_a"] + parts["idt_b"])
        fakes = jax.lax.stop_gradient((fake_a, fake_b))
        return loss, (stats, fakes, parts)

    g_params = {n: nets[n].params for n in GENERATORS}
    (loss, (stats, (fake_a, fake_b), parts)), grads = jax.value_and_grad(loss_fn, has_aux=True)(g_params)
    loss, parts, grads = family.layout.replica_mean((loss, parts, grads))
    new = {}
    for n in GENERATORS:
        updates, opt = family.g_tx.update(grads[n], nets[n].opt, nets[n].params)
        new[n] = nets[n].replace(params=optax.apply_updates(nets[n].params, updates), opt=opt, stats=stats[n])
    kept = {"fake_a": fake_a, "fake_b": fake_b, "real_a": a, "real_b": b}
    kept = {k: _global_fakes(family, v) for k, v in kept.items()}  # the whole batch: replicated under pmap
    state = _with_nets(state, **new).replace(extra={**state.extra, **kept})
    return state, {"g_loss": loss, "g_grad_norm": optax.global_norm(grads), **parts}


# --- phase D ------------------------------------------------------------------------------------------------------


def query_pool(pool: Array, count: Array, images: Array, key: Array) -> tuple[Array, Array, Array]:
    """The reference's ImagePool.query, image by image: while the pool is filling, an image enters and is
    returned; once full, with probability 1/2 a random stored image is returned and replaced by the new one,
    otherwise the new image is returned. Returns (pool, count, images for the critic)."""
    size = pool.shape[0]
    if size == 0:
        return pool, count, images

    def one(carry: tuple[Array, Array], inputs: tuple[Array, Array]) -> tuple[tuple[Array, Array], Array]:
        pool, count = carry
        image, k = inputs
        k_coin, k_slot = jax.random.split(k)
        filling = count < size
        swap = jax.random.uniform(k_coin) > 0.5
        slot = jnp.where(filling, count, jax.random.randint(k_slot, (), 0, size))
        stored = pool[slot]
        write = filling | swap
        pool = pool.at[slot].set(jnp.where(write, image, stored))
        out = jnp.where(~filling & swap, stored, image)
        return (pool, jnp.minimum(count + 1, size)), out

    keys = jax.random.split(key, images.shape[0])
    (pool, count), out = jax.lax.scan(one, (pool, count), (images, keys))
    return pool, count, out


def _global_fakes(family: CycleGAN, fakes: Array) -> Array:
    """Under pmap each device holds its part of the batch; the pools see the whole batch (same on every device),
    so the replicated state stays replicated."""
    if family.layout.axis_name is None:
        return fakes
    return jax.lax.all_gather(fakes, family.layout.axis_name, tiled=True)


def _local_part(family: CycleGAN, images: Array) -> Array:
    if family.layout.axis_name is None:
        return images
    n = family.replica_batch
    return jax.lax.dynamic_slice_in_dim(images, jax.lax.axis_index(family.layout.axis_name) * n, n)


def _pooled_fakes(family: CycleGAN, state: TrainState, key: Array) -> tuple[dict[str, Array], dict[str, Array]]:
    extra, out = dict(state.extra), {}
    for domain, k in zip("ab", jax.random.split(key), strict=True):
        fakes = extra[f"fake_{domain}"]
        pool, count, chosen = query_pool(extra[f"pool_{domain}"], extra[f"pool_count_{domain}"], fakes, k)
        extra[f"pool_{domain}"], extra[f"pool_count_{domain}"] = pool, count
        out[domain] = family.layout.split_batch(_local_part(family, chosen))
    return extra, out


def critic_update(family: CycleGAN, state: TrainState, key: Array) -> tuple[TrainState, Metrics]:
    """Both critics on the G phase's real batch against pooled fakes; their losses add, so one gradient
    over the pair is each critic's own gradient (the reference's backward_D_A, backward_D_B).

    The pools draw from a key of the run key and step, not the phase key (which pmap folds per device): every
    replica makes the same swaps, so the pools stay replicated."""
    del key
    pool_key = jax.random.fold_in(jax.random.fold_in(state.key, state.step), POOL_SALT)
    extra, fakes = _pooled_fakes(family, state, pool_key)
    real = {d: family.layout.split_batch(_local_part(family, extra[f"real_{d}"])) for d in "ab"}
    nets, (_, d_scale) = state.nets, family.scales
    ones, zeros = jnp.ones((), jnp.float32), jnp.zeros((), jnp.float32)

    def loss_fn(params: dict[str, Any]) -> tuple[Array, tuple]:
        stats, parts = {}, {}
        for name, d in (("D_a", "a"), ("D_b", "b")):
            judged_real, s = _run_net(family, family.critic, nets[name], params[name], real[d])
            judged_fake, s = _run_net(family, family.critic, nets[name].replace(stats=s), params[name], fakes[d])
            stats[name] = s
            parts[f"d_{d}_loss"] = d_scale * family.loss.critic(judged_real, judged_fake, ones, zeros)
            parts[f"d_{d}_real"], parts[f"d_{d}_fake"] = jnp.mean(judged_real), jnp.mean(judged_fake)
        return parts["d_a_loss"] + parts["d_b_loss"], (stats, parts)

    d_params = {n: nets[n].params for n in CRITICS}
    (loss, (stats, parts)), grads = jax.value_and_grad(loss_fn, has_aux=True)(d_params)
    loss, parts, grads = family.layout.replica_mean((loss, parts, grads))
    new = {}
    for n in CRITICS:
        updates, opt = family.d_tx.update(grads[n], nets[n].opt, nets[n].params)
        new[n] = nets[n].replace(params=optax.apply_updates(nets[n].params, updates), opt=opt, stats=stats[n])
    state = _with_nets(state, **new).replace(extra=extra)
    return state, {"d_loss": loss, "d_grad_norm": optax.global_norm(grads), **parts}


def build(cfg: Config, source: Any) -> CycleGAN:
    """The family from a config: networks from the model registry (model=cyclegan or a plug-in's pair)."""
    generator, critic = MODELS.entry(cfg.model.name).obj(cfg.model, source)
    steps, m = cfg.train.steps, cfg.model
    return CycleGAN(
        generator=generator,
        critic=critic,
        g_tx=build_optimizer(cfg.optim.g, steps),
        d_tx=build_optimizer(cfg.optim.d, steps),
        loss=get_loss(cfg.loss.name),
        loss_name=cfg.loss.name,
        sample=source.sample,
        example_shape=source.example_shape,
        batch_size=cfg.train.batch_size,
        cycle_weight=getattr(m, "cycle_weight", 10.0),
        identity_weight=getattr(m, "identity_weight", 0.5),
        pool_size=getattr(m, "pool_size", 50),
        on_nonfinite=cfg.train.on_nonfinite,
    )


@functools.lru_cache(maxsize=8)
def make_translator(family: CycleGAN, direction: str) -> Callable[[TrainState, Array], tuple[Array, Array]]:
    there, back = {"a2b": ("G_ab", "G_ba"), "b2a": ("G_ba", "G_ab")}[direction]

    def run(state: TrainState, x: Array) -> tuple[Array, Array]:
        fwd, bwd = state.nets[there], state.nets[back]
        out = family.generator.apply(fwd.variables, x, train=False)
        return out, family.generator.apply(bwd.variables, out, train=False)

    return jax.jit(run, compiler_options=cpu_compiler_options())
