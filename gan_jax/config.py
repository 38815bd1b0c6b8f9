"""Structured config schema: the single source of defaults and the validator of every Hydra run.

YAML files under `configs/` only pick values; the dataclasses here say which keys exist and their types, so a
misspelled key or a wrong type fails at composition with a message that names it.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from gan_jax.errors import ConfigError


@dataclass
class DataConfig:
    """What to train on. Toy mixtures are sampled on device; image sets are loaded once into device memory."""

    # ring | grid | gaussian | disk | digits | mnist | fashion_mnist | cifar10 | stacked_mnist | npz | folder | csv |
    # unpaired (two image domains, data.a and data.b)
    name: str = "ring"
    root: str | None = None  # data root for file datasets; falls back to $GAN_JAX_DATA, then ~/.cache/gan_jax/data
    # data=npz: the .npz file (x: NHWC images, optional y) | data=folder: a folder of images (one subfolder per
    # class, sorted names -> labels 0..K-1, or the images directly: unlabelled) | data=csv: the training table
    path: str | None = None
    # data=csv (tabular GANs). Relative paths are looked up as given, then under the data root.
    test_path: str | None = None  # real rows held out from training: ML efficacy's test set, DCR's reference
    target: str | None = None  # classification target column for ML efficacy (CTGAN protocol)
    columns: dict[str, str] = field(default_factory=dict)  # kind overrides, e.g. data.columns.zip=categorical
    metadata: str | None = None  # or a metadata JSON ({column: kind} or SDV single-table metadata)
    size: int = 50000  # data=stacked_mnist: images built (three MNIST digits as RGB, 1,000 modes)
    pixel_range: list[float] = field(default_factory=lambda: [0.0, 255.0])  # data=npz: range of non-uint8 x
    sigma: float = 0.02  # std of each mixture component (toy data)
    # image side after resizing (digits: 8, 16, 28, 32; mnist, fashion_mnist: 28 or 32; cifar10: 32; folder: any,
    # after a centre crop to square)
    resolution: int = 32
    # which split to read: mnist, fashion_mnist, stacked_mnist: train (60k) | test (10k); cifar10: train (50k,
    # data_batch_1..5) | test (10k, test_batch). digits, npz, folder, csv have no splits (the whole file/folder).
    split: str = "test"
    download: bool = False  # fetch a missing file (checksum-verified) when online
    verify_checksums: bool = True  # check mnist / fashion_mnist / cifar10 files against the published checksums
    hflip: bool = False  # image sets: mirror each drawn example left-right with probability 1/2 (augmentation)
    # data=unpaired (CycleGAN): two image domains, each any registered image dataset (digits, mnist, npz, ...)
    a: str | None = None  # domain A's dataset name
    b: str | None = None  # domain B's dataset name
    a_path: str | None = None  # domain A's file/folder, for a dataset that needs one (npz, folder)
    b_path: str | None = None  # domain B's file/folder
    a_split: str = "test"  # domain A's split (mnist, fashion_mnist, cifar10); shared data holds only MNIST's test
    b_split: str = "test"  # domain B's split
    channels: int = 0  # channels both domains become: 1 (RGB -> ITU-R 601 luma) | 3 (grey repeated) | 0: the larger
    test_fraction: float = 0.2  # share of each domain's images held out as its test split (never trained on)
    split_seed: int = 0  # seed of that split's permutation, apart from the run seed: same test sets across seeds


@dataclass
class ModelConfig:
    """The keys every model has. Each model extends it with its own schema (gan_jax/models/catalog.py, or a
    plug-in's), so a key that the chosen model does not have is refused at composition, not ignored."""

    name: str = "mlp"  # a registered model: mlp | dcgan | radford | resnet (SNGAN) | ctgan | a plug-in's
    z_dim: int = 16
    latent: str = "normal"  # normal: N(0, I) | uniform: U(-1, 1)
    pack: int = 1  # PacGAN: the critic judges packs of this many samples, all real or all fake (1 = plain GAN)
    # Class-conditional GANs (labelled image data): where the label enters (models/conditioning.py).
    # cgan: G's latent and D's input; acgan: G's latent and an auxiliary classifier on D (class losses: loss.aux_*);
    # projection: conditional batch norm in G and the projection term in D.
    conditioning: str = "none"  # none | cgan | acgan | projection
    spectral_norm: bool = False  # spectral normalisation of every critic layer (power-iteration state in the state)


@dataclass
class LossConfig:
    """Adversarial loss and the label tricks that go with the logistic losses."""

    name: str = "ns"  # minimax | ns | lsgan | wgan | wgan_gp | hinge
    gp_weight: float = 10.0  # WGAN-GP's lambda
    clip_value: float = 0.01  # WGAN weight clipping bound
    label_smoothing: float = 0.0  # one-sided: real target 1 - s (minimax, ns, lsgan)
    label_flip_prob: float = 0.0  # swap real/fake targets of each example with this probability
    # model.conditioning=acgan: weights of the auxiliary classifier's cross-entropy (Odena et al. 2017)
    aux_real_weight: float = 1.0  # in D's loss, on real images with their labels
    aux_fake_weight: float = 1.0  # in D's loss, on generated images with the labels they were drawn for
    aux_g_weight: float = 1.0  # in G's loss, on generated images
    r1_gamma: float = 0.0  # > 0: R1 penalty gamma/2 E||grad D(x_real)||^2 (Mescheder et al. 2018)
    r1_every: int = 1  # lazy R1 (StyleGAN2): applied every this many generator steps, scaled by it


@dataclass
class OptimizerConfig:
    name: str = "adam"  # adam | rmsprop | sgd
    lr: float = 2e-4
    b1: float = 0.5
    b2: float = 0.999
    eps: float = 1e-8
    momentum: float = 0.0  # sgd / rmsprop
    weight_decay: float = 0.0  # L2 term added to the gradient before the update (torch Adam's weight_decay)
    # constant | linear (decays to 0 at train.steps) | constant_linear (constant for the first `decay_from` of the
    # updates, then linear to 0: CycleGAN's n_epochs + n_epochs_decay)
    schedule: str = "constant"
    decay_from: float = 0.5  # schedule=constant_linear: fraction of the run at the constant rate


@dataclass
class OptimConfig:
    """Two optimizers: the generator's and the critic's (learning rates may differ, e.g. TTUR)."""

    g: OptimizerConfig = field(default_factory=OptimizerConfig)
    d: OptimizerConfig = field(default_factory=OptimizerConfig)


@dataclass
class TrainConfig:
    steps: int = 2000  # generator updates
    batch_size: int = 512
    n_critic: int = 1  # critic updates per generator update
    steps_per_call: int = 100  # train steps fused into one device dispatch with lax.scan
    log_every: int = 100
    ckpt_every: int = 1000
    keep_checkpoints: int = 3
    # true: continue from the latest checkpoint in the run directory; a path (another run's directory, its
    # checkpoints/N or checkpoints/best): start this run from that checkpoint (fine-tuning; the whole state)
    resume: Any = False
    ema_decay: float = 0.0  # > 0 keeps an exponential moving average of G's weights; sampling and eval use it
    ema_start: int = 0  # step from which the average starts (before it, it tracks G's weights exactly)
    on_nonfinite: str = "stop"  # stop: end the run at a NaN/Inf loss, gradient or weight | skip: skip such steps
    best_metric: str = "auto"  # evaluation metric whose best value is kept in checkpoints/best (auto | none | name)
    population: int = 1  # > 1 trains this many independent GANs in one vmapped program (see PopulationConfig)
    # DiffAugment (Zhao et al. 2020): ops applied to real and fake images before the critic, in G's and D's
    # updates: any of color, translation, cutout (e.g. train.augment=[color,translation,cutout])
    augment: list[str] = field(default_factory=list)
    instance_noise: float = 0.0  # > 0: Gaussian noise of this std added to D's real and fake inputs
    instance_noise_steps: int = 0  # the noise std decays linearly to 0 over these steps (0: constant)


@dataclass
class PopulationConfig:
    """Per-member settings of a population run (`train.population=N`): each list is empty (every member takes
    the run's value) or has N entries, one per member. Member i trains exactly like the single run with its seed
    and values (bit for bit with batching=map): a seed / hyperparameter sweep that compiles and runs as one."""

    seeds: list[int] = field(default_factory=list)  # empty: seed, seed + 1, ..., seed + N - 1
    lr_g: list[float] = field(default_factory=list)  # optim.g.lr per member
    lr_d: list[float] = field(default_factory=list)  # optim.d.lr per member
    gp_weight: list[float] = field(default_factory=list)  # loss.gp_weight per member (loss=wgan_gp)
    # Any numeric config key by its dotted path, N values each, e.g. {optim.g.lr: [1e-4, 2e-4], loss.r1_gamma: [1,
    # 10]}. The values are traced, so every member shares one compiled program (keys that change the program's
    # structure, such as widths, cannot vary: the error names them).
    vary: dict[str, list[Any]] = field(default_factory=dict)
    # map: members one after another inside the one program, each exactly its single run (bit for bit) |
    # vmap: members batched (faster on accelerators; equal to their single runs up to reduction-order noise)
    batching: str = "map"


@dataclass
class ParallelConfig:
    """How a run spreads over devices and processes (README: Scaling out)."""

    devices: str = "all"  # all | N: this process's devices (GPUs, TPU cores, CPU devices) to split each batch over
    backend: str = "jit"  # jit: one program over a device mesh (NamedSharding) | pmap: one replica per device
    # Multi-process (multi-host) runs: jax.distributed joins the processes. Set all three (or the environment
    # variables JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID); SLURM tasks (srun) and the
    # hydra-submitit launcher are detected without them.
    coordinator_address: str | None = None  # host:port of process 0
    num_processes: int | None = None
    process_id: int | None = None
    auto: bool = False  # let jax.distributed.initialize() detect the cluster itself (Cloud TPU pod slices, MPI)
    init_timeout_s: int = 300  # how long a process waits for the others to join
    # A peer that dies or hangs: the others stop with one line and exit code 75 (relaunch with train.resume=true)
    # once a per-chunk collective has waited this long (or 5x the slowest one so far, if longer)
    peer_timeout_s: float = 120.0


@dataclass
class EvalConfig:
    every: int = 1000  # steps between diagnostics (and at the end); 0 = only at the end
    num_samples: int = 2500  # samples scored at each evaluation (toy diagnostics and image metrics)
    grid_samples: int = 64  # images in the sample grid
    # auto: toy data -> mode diagnostics; digits/mnist/fashion_mnist -> classifier_fid, classifier_kid, classes;
    # other images -> none. Names: see gan_jax/metrics/evaluator.py (fid, kid, prdc need the converted Inception
    # weights).
    metrics: list[str] = field(default_factory=lambda: ["auto"])
    cache_dir: str | None = None  # classifier/Inception weights and reference statistics ($GAN_JAX_CACHE)
    num_real: int = 0  # real images in the reference statistics; 0 = the whole dataset (split)
    # Split of the training dataset whose images are the metrics' reference (e.g. test for StudioGAN's
    # "10k test vs 10k generated" FID); null: the images the run trains on.
    reference_split: str | None = None
    # translation runs (family=cyclegan): training steps of each domain's classifier (label preservation, cFID)
    classifier_steps: int = 1500


@dataclass
class LoggerConfig:
    """Where a run's metrics go besides metrics.jsonl. Off unless chosen: configs/config.yaml picks logger=wandb
    (mode: offline), and logger=tensorboard alone (which sets only `tensorboard`) means TensorBoard without W&B;
    logger=[wandb,tensorboard] merges both files."""

    mode: str = "disabled"  # W&B: offline | online | disabled
    tensorboard: bool = False  # event files in <run_dir>/tensorboard/ (`tensorboard --logdir`)
    project: str = "gan_jax"
    entity: str | None = None
    group: str | None = None
    tags: list[str] = field(default_factory=list)
    progress: bool = True  # console progress bar


@dataclass
class Config:
    name: str = "toy_ring"  # experiment name: names the run directory and the W&B run
    seed: int = 0
    # The training family (gan_jax/families): auto = the one the model belongs to (model=ctgan: ctgan, else gan).
    family: str = "auto"
    # Modules (dotted names or .py paths) imported before anything is built: their decorators register models,
    # losses, datasets or whole families (README: Your own model). Read from the command line / API overrides.
    plugins: list[str] = field(default_factory=list)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    parallel: ParallelConfig = field(default_factory=ParallelConfig)
    population: PopulationConfig = field(default_factory=PopulationConfig)


@dataclass
class ConditionConfig:
    """`gan-jax-sample` on a table run: every row conditioned on `column == value` (a categorical column)."""

    column: str | None = None
    value: str | None = None  # compared with the categories exactly, then as text; null with a column: missing
    # true: keep drawing until n rows have the value (the generator is only trained to follow the condition);
    # false: every row gets the condition vector, as ctgan's sample(condition_column, condition_value)
    reject: bool = True
    max_draws: int = 50  # rejection sampling gives up after this many times n rows drawn (with the acceptance rate)


@dataclass
class SampleConfig:
    """`gan-jax-sample`: draw samples from a trained run."""

    run_dir: str = "???"  # a run directory, or a checkpoint's path: DIR/checkpoints/N, DIR/checkpoints/best
    n: int = 64
    seed: int = 0
    out: str = "samples.npz"
    checkpoint: str = "latest"  # latest (newest valid) | best (by train.best_metric) | a step number
    member: int | None = None  # population runs (train.population > 1): which member's generator to sample
    # translation runs (family=cyclegan): which way (a2b | b2a) and what to translate: test | train (the source
    # domain's split of the run's data), a .npz file (x: NHWC images) or a folder of images; n: how many
    direction: str = "a2b"
    input: str = "test"
    # class-conditional runs: n samples of class k (label=k) or of each listed class (label=[0,3,7]), one class per
    # grid row; null: n samples cycling through all classes
    label: Any = None
    condition: ConditionConfig = field(default_factory=ConditionConfig)  # table runs only
    # StyleGAN2 runs (family=stylegan2): what to draw (samples | style_mixing | interpolation), truncation ψ
    # towards w_avg for layers below the cutoff (null: all), and the noise inputs (random | const | none)
    mode: str = "samples"
    truncation_psi: float = 1.0
    truncation_cutoff: int | None = None
    noise_mode: str = "const"
    row_seeds: list[int] = field(default_factory=lambda: [85, 100, 75, 458, 1500])  # style_mixing: the reference's
    col_seeds: list[int] = field(default_factory=lambda: [55, 821, 1789, 293])
    col_styles: list[int] | None = None  # layers taken from the column seed (null: 0-6, the reference's)
    interp_seeds: list[int] = field(default_factory=lambda: [0, 1, 2, 3])  # interpolation: strips between them
    interp_frames: int = 8


@dataclass
class EvalRunConfig:
    """`gan-jax-eval`: score a trained run's checkpoint and write eval.json into the run directory."""

    run_dir: str = "???"  # a run directory, or a checkpoint's path: DIR/checkpoints/N, DIR/checkpoints/best
    checkpoint: str = "latest"  # latest | best | a step number
    metrics: list[str] = field(default_factory=lambda: ["auto"])  # as eval.metrics
    n: int = 0  # samples to score; 0 = the run's eval.num_samples
    num_real: int = 0  # reference images; 0 = the whole dataset (as eval.num_real)
    cache_dir: str | None = None  # as eval.cache_dir
    member: int | None = None  # population runs: which member to score


# Values that are not registry names: the choices are part of the schema.
CHOICES: dict[str, tuple[str, ...]] = {
    "model.latent": ("normal", "uniform"),
    "model.conditioning": ("none", "cgan", "acgan", "projection"),
    "optim.g.schedule": ("constant", "linear", "constant_linear"),
    "optim.d.schedule": ("constant", "linear", "constant_linear"),
    "logger.mode": ("offline", "online", "disabled"),
    "train.on_nonfinite": ("stop", "skip"),
    "parallel.backend": ("jit", "pmap"),
    "population.batching": ("map", "vmap"),
}
# Keys whose values are names in a registry (gan_jax/registry.py): its names are the choices.
REGISTRY_KEYS = {
    "data.name": "DATASETS",
    "model.name": "MODELS",
    "loss.name": "LOSSES",
    "optim.g.name": "OPTIMIZERS",
    "optim.d.name": "OPTIMIZERS",
}


def register_configs() -> None:
    """Put the schemas in Hydra's ConfigStore so `configs/config.yaml` can extend them: the run, sample and eval
    schemas, and each registered model's schema under `schema/model/<name>` (what `configs/model/<name>.yaml`
    extends) and, for a model without a YAML file (a plug-in's), as the option `model=<name>` itself."""
    from gan_jax.registry import MODELS

    cs = ConfigStore.instance()
    cs.store(name="config_schema", node=Config)
    cs.store(name="sample_schema", node=SampleConfig)
    cs.store(name="eval_schema", node=EvalRunConfig)
    for name in MODELS.names():
        entry = MODELS.entry(name)
        schema = entry.config or ModelConfig
        cs.store(group="schema/model", name=name, node=schema(name=name))
        if not (entry.info or {}).get("yaml"):  # no configs/model/<name>.yaml: the schema is the option itself
            cs.store(group="model", name=name, node=schema(name=name))


def _positive(value: float, key: str) -> None:
    if value <= 0:
        raise ConfigError(f"{key}={value} must be positive")


def _lookup(cfg: Any, key: str) -> Any:
    node = cfg
    for part in key.split("."):
        node = getattr(node, part)
    return node


def _validate_choices(cfg: Config) -> None:
    from gan_jax import registry

    for key, allowed in CHOICES.items():
        value = _lookup(cfg, key)
        if value not in allowed:
            raise ConfigError(f"{key}={value!r} is not a valid choice; choose one of: {', '.join(allowed)}")
    for key, name in REGISTRY_KEYS.items():
        reg = getattr(registry, name)
        value = _lookup(cfg, key)
        if value not in reg:
            raise ConfigError(reg.unknown(value).replace(f"{reg.key}=", f"{key}=", 1))
    schema = registry.MODELS.entry(cfg.model.name).config
    if schema is not None and not isinstance(cfg.model, schema):
        raise ConfigError(
            f"model.name={cfg.model.name!r} was set on another model's config ({type(cfg.model).__name__}); "
            f"choose the model with model={cfg.model.name} instead of model.name="
        )
    if cfg.family != "auto" and cfg.family not in registry.FAMILIES:
        raise ConfigError(registry.FAMILIES.unknown(cfg.family))


def resolved_family(cfg: Config) -> str:
    """`family`, with auto resolved by the model's registry entry (default: the one-G-one-critic gan family)."""
    from gan_jax.registry import MODELS

    if cfg.family != "auto":
        return cfg.family
    return (MODELS.entry(cfg.model.name).info or {}).get("family", "gan")


def _check_resume(resume: Any) -> None:
    if isinstance(resume, bool) or (isinstance(resume, str) and resume.strip()):
        return
    raise ConfigError(
        f"train.resume={resume!r} must be true, false or a checkpoint path to start from (another run's directory, "
        "its checkpoints/N or checkpoints/best)"
    )


def validate(cfg: Config) -> Config:
    """Checks the constraints the schema types cannot express; raises ConfigError naming key and fix. The
    chosen model and family check their own keys (their registry entries' `validate`)."""
    from gan_jax.registry import FAMILIES, MODELS

    # A plug-in given as a file is recorded by its absolute path: `gan-jax-sample` may run from elsewhere.
    cfg.plugins = [str(Path(p).expanduser().absolute()) if p.endswith(".py") else p for p in cfg.plugins]
    _validate_choices(cfg)
    t = cfg.train
    for key in ("steps", "batch_size", "n_critic", "steps_per_call", "log_every", "ckpt_every", "keep_checkpoints"):
        _positive(getattr(t, key), f"train.{key}")
    _check_resume(t.resume)
    _positive(cfg.model.z_dim, "model.z_dim")
    if cfg.model.pack < 1 or cfg.train.batch_size % cfg.model.pack:
        raise ConfigError(
            f"model.pack={cfg.model.pack} must be >= 1 and divide train.batch_size={cfg.train.batch_size}; "
            "choose a pack that divides the batch (or a batch size that is a multiple of model.pack)"
        )
    _positive(cfg.eval.num_samples, "eval.num_samples")
    if cfg.eval.every < 0:
        raise ConfigError(f"eval.every={cfg.eval.every} must be >= 0 (0 evaluates only at the end)")
    for opt_key in ("g", "d"):
        _positive(getattr(cfg.optim, opt_key).lr, f"optim.{opt_key}.lr")
        if getattr(cfg.optim, opt_key).weight_decay < 0:
            raise ConfigError(f"optim.{opt_key}.weight_decay must be >= 0")
        if not 0.0 <= getattr(cfg.optim, opt_key).decay_from <= 1.0:
            raise ConfigError(f"optim.{opt_key}.decay_from must be in [0, 1] (the share of the run before the decay)")
    if not 0.0 <= cfg.train.ema_decay < 1.0:
        raise ConfigError(f"train.ema_decay={cfg.train.ema_decay} must be in [0, 1) (0 turns the EMA off)")
    if cfg.data.name == "npz" and not cfg.data.path:
        raise ConfigError("data=npz needs data.path=FILE.npz (x: NHWC images, optional y: labels)")
    if cfg.data.sigma <= 0:
        raise ConfigError(f"data.sigma={cfg.data.sigma} must be positive")
    for entry in (MODELS.entry(cfg.model.name), FAMILIES.entry(resolved_family(cfg))):
        check = (entry.info or {}).get("validate")
        if check is not None:
            check(cfg)
    _validate_parallel(cfg)
    _validate_population(cfg)
    return cfg


def _validate_parallel(cfg: Config) -> None:
    p = cfg.parallel
    devices = str(p.devices)
    if devices != "all" and not (devices.isdigit() and int(devices) > 0):
        raise ConfigError(f"parallel.devices={devices!r} must be 'all' or a positive number of devices per process")
    if p.num_processes is not None and p.num_processes < 1:
        raise ConfigError(f"parallel.num_processes={p.num_processes} must be >= 1")
    if p.process_id is not None and p.num_processes is not None and not 0 <= p.process_id < p.num_processes:
        raise ConfigError(
            f"parallel.process_id={p.process_id} must be in [0, parallel.num_processes={p.num_processes}); "
            "give each process its own id from 0"
        )
    _positive(p.init_timeout_s, "parallel.init_timeout_s")


# The population lists kept as short names for their config keys (population.vary takes any key).
POPULATION_ALIASES = {"lr_g": "optim.g.lr", "lr_d": "optim.d.lr", "gp_weight": "loss.gp_weight"}


def population_values(cfg: Config) -> dict[str, list[float]]:
    """Every per-member value list by the dotted config key it replaces (population.vary plus the aliases)."""
    values = {key: list(getattr(cfg.population, alias)) for alias, key in POPULATION_ALIASES.items()}
    values = {k: v for k, v in values.items() if v}
    for key, vals in cfg.population.vary.items():
        if key in values:
            raise ConfigError(f"population.vary.{key} and its short form both give values; keep one")
        values[key] = list(vals)
    return values


def _validate_population(cfg: Config) -> None:
    size, pop = cfg.train.population, cfg.population
    if size < 1:
        raise ConfigError(f"train.population={size} must be >= 1 (1 = a single GAN)")
    lists = {"population.seeds": list(pop.seeds)}
    lists |= {f"population.{alias}": list(getattr(pop, alias)) for alias in POPULATION_ALIASES}
    lists |= {f"population.vary.{k}": list(v) for k, v in pop.vary.items()}
    for key, values in lists.items():
        if values and len(values) != size:
            raise ConfigError(
                f"{key} has {len(values)} values but train.population={size}; give one value per "
                f"member (or set train.population={len(values)})"
            )
    for key in population_values(cfg):
        try:
            current = _lookup(cfg, key)
        except AttributeError:
            raise ConfigError(
                f"population.vary: {key!r} is not a config key; give dotted paths such as optim.g.lr"
            ) from None
        values = population_values(cfg)[key]
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in [current, *values])
        if not numeric:
            raise ConfigError(f"population.vary: {key} is {type(current).__name__}, only numeric keys can vary")
    if pop.gp_weight and cfg.loss.name != "wgan_gp":
        raise ConfigError(f"population.gp_weight applies to loss=wgan_gp, not loss.name={cfg.loss.name!r}")


def member_config(cfg: Config, i: int) -> Config:
    """The single-run config that member i of a population equals (its seed and values)."""
    import dataclasses

    member = cfg
    for key, values in population_values(cfg).items():
        member = replace_key(member, key, type(_lookup(cfg, key))(values[i]))
    seeds = list(cfg.population.seeds) or [cfg.seed + j for j in range(cfg.train.population)]
    train = dataclasses.replace(member.train, population=1)
    return dataclasses.replace(member, seed=seeds[i], train=train, population=PopulationConfig())


def replace_key(node: Any, key: str, value: Any) -> Any:
    """A copy of the dataclass tree `node` with the dotted `key` set to `value` (any value: a tracer too)."""
    import dataclasses

    head, _, rest = key.partition(".")
    if not rest:
        return dataclasses.replace(node, **{head: value})
    return dataclasses.replace(node, **{head: replace_key(getattr(node, head), rest, value)})


def to_config(cfg: DictConfig | Config) -> Config:
    """Turns a composed DictConfig into the typed dataclass and validates it (fails on '???' too)."""
    if isinstance(cfg, Config):
        return validate(cfg)
    extra = unknown_keys(cfg, Config)
    if extra:
        raise ConfigError(f"unknown config key(s) {', '.join(extra)} (added with '+'?); remove them")
    try:
        obj = OmegaConf.to_object(cfg)
    except Exception as err:  # omegaconf raises several types; all mean a bad value
        raise ConfigError(one_line(err)) from err
    if not isinstance(obj, Config):
        raise ConfigError(f"expected a gan_jax run config, got {type(obj).__name__}")
    return validate(obj)


def unknown_keys(node: DictConfig, schema: type, prefix: str = "") -> list[str]:
    """Keys in `node` that the dataclass `schema` does not define: `+key=value` gets them past Hydra's checks."""
    known = {f.name: f.type for f in fields(schema)}
    hints = typing.get_type_hints(schema)
    found = []
    for key in node:
        name = f"{prefix}{key}"
        if key not in known:
            found.append(name)
        elif is_dataclass(hints[key]) and OmegaConf.is_dict(node[key]):
            # The node's own schema when it is a subclass of the declared one (a model's config).
            actual = OmegaConf.get_type(node[key])
            schema_of = actual if isinstance(actual, type) and issubclass(actual, hints[key]) else hints[key]
            found += unknown_keys(node[key], schema_of, f"{name}.")
    return found


def one_line(err: BaseException) -> str:
    """Condenses Hydra/OmegaConf exceptions (which span several lines and chain causes) into one line."""
    parts: list[str] = []
    seen: BaseException | None = err
    while seen is not None:
        text = str(seen).strip()
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        keep = [ln for ln in lines if not ln.startswith(("reference_type", "object_type", "Config search path"))]
        if keep:
            parts.append("; ".join(keep))
        seen = seen.__cause__
    message = " | ".join(dict.fromkeys(parts))
    return message.replace("\t", "")
