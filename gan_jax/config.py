"""Structured config schema: the single source of defaults and the validator of every Hydra run.

YAML files under `configs/` only pick values; the dataclasses here say which keys exist and their types, so a
misspelled key or a wrong type fails at composition with a message that names it.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from gan_jax.errors import ConfigError


@dataclass
class DataConfig:
    """What to train on. Toy mixtures are sampled on device; image sets are loaded once into device memory."""

    # ring | grid | gaussian | disk | digits | mnist | fashion_mnist | cifar10 | stacked_mnist | npz | folder | csv
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


@dataclass
class ModelConfig:
    """Generator and critic. One flat node so every field is validated; fields a family ignores are unused."""

    # mlp | dcgan | radford | resnet (SNGAN) | ctgan (tables: residual G, packed critic, Gumbel-softmax heads)
    name: str = "mlp"
    z_dim: int = 16
    latent: str = "normal"  # normal: N(0, I) | uniform: U(-1, 1)
    # MLP family
    g_widths: list[int] = field(default_factory=lambda: [256, 256, 256])
    d_widths: list[int] = field(default_factory=lambda: [256, 256, 256])
    g_activation: str = "relu"
    d_activation: str = "leaky_relu"
    g_dropout: float = 0.0
    g_output: str = "linear"  # linear | tanh
    d_dropout: float = 0.5  # model=ctgan: dropout after each critic layer
    gumbel_tau: float = 0.2  # model=ctgan: Gumbel-softmax temperature of the discrete outputs
    cond_loss_weight: float = 1.0  # model=ctgan: weight of the generator's conditional cross-entropy
    # convolutional families (image channels and resolution come from the dataset)
    init: str = "default"  # default (Flax) | normal02 (Radford's N(0, 0.02))
    width_scale: float = 1.0  # model=dcgan: every layer's width times this (1 = StudioGAN's; < 1 for quick runs)
    pack: int = 1  # PacGAN: the critic judges packs of this many samples, all real or all fake (1 = plain GAN)
    # Class-conditional GANs (labelled image data): where the label enters (models/conditioning.py).
    # cgan: G's latent and D's input; acgan: G's latent and an auxiliary classifier on D (class losses: loss.aux_*);
    # projection: conditional batch norm in G and the projection term in D.
    conditioning: str = "none"  # none | cgan | acgan | projection
    spectral_norm: bool = False  # spectral normalisation of every critic layer (power-iteration state in the state)
    attention_resolution: int = 0  # > 0: a SAGAN self-attention block at this feature-map size in G and D (resnet)
    g_channels: int = 256  # model=resnet: generator width (SNGAN CIFAR-10: 256)
    d_channels: int = 128  # model=resnet: critic width (SNGAN CIFAR-10: 128)
    compute_dtype: str = "float32"  # float32 | bfloat16: convolution compute; parameters and optimizer stay float32


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
    schedule: str = "constant"  # constant | linear (decays to 0 at train.steps)


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
    resume: bool = False  # continue from the latest checkpoint in the run directory
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
    the run's value) or has N entries, one per member. Member i trains like the single run with its seed
    and values (to floating-point reduction order): a seed / hyperparameter sweep that compiles and runs as one."""

    seeds: list[int] = field(default_factory=list)  # empty: seed, seed + 1, ..., seed + N - 1
    lr_g: list[float] = field(default_factory=list)  # optim.g.lr per member
    lr_d: list[float] = field(default_factory=list)  # optim.d.lr per member
    gp_weight: list[float] = field(default_factory=list)  # loss.gp_weight per member (loss=wgan_gp)


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


@dataclass
class EvalConfig:
    every: int = 1000  # steps between diagnostics (and at the end); 0 = only at the end
    num_samples: int = 2500  # samples scored at each evaluation (toy diagnostics and image metrics)
    grid_samples: int = 64  # images in the sample grid
    # auto: toy data -> mode diagnostics; digits/mnist -> classifier_fid, classifier_kid, classes; other images ->
    # none. Names: see gan_jax/metrics/evaluator.py (fid, kid, prdc need the converted Inception weights).
    metrics: list[str] = field(default_factory=lambda: ["auto"])
    cache_dir: str | None = None  # classifier/Inception weights and reference statistics ($GAN_JAX_CACHE)
    num_real: int = 0  # real images in the reference statistics; 0 = the whole dataset (split)
    # Split of the training dataset whose images are the metrics' reference (e.g. test for StudioGAN's
    # "10k test vs 10k generated" FID); null: the images the run trains on.
    reference_split: str | None = None


@dataclass
class LoggerConfig:
    mode: str = "offline"  # offline | online | disabled
    project: str = "gan_jax"
    entity: str | None = None
    group: str | None = None
    tags: list[str] = field(default_factory=list)
    progress: bool = True  # console progress bar


@dataclass
class Config:
    name: str = "toy_ring"  # experiment name: names the run directory and the W&B run
    seed: int = 0
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

    run_dir: str = "???"
    n: int = 64
    seed: int = 0
    out: str = "samples.npz"
    checkpoint: str = "latest"  # latest (newest valid) | best (by train.best_metric) | a step number
    member: int | None = None  # population runs (train.population > 1): which member's generator to sample
    # class-conditional runs: n samples of class k (label=k) or of each listed class (label=[0,3,7]), one class per
    # grid row; null: n samples cycling through all classes
    label: Any = None
    condition: ConditionConfig = field(default_factory=ConditionConfig)  # table runs only


@dataclass
class EvalRunConfig:
    """`gan-jax-eval`: score a trained run's checkpoint and write eval.json into the run directory."""

    run_dir: str = "???"
    checkpoint: str = "latest"  # latest | best | a step number
    metrics: list[str] = field(default_factory=lambda: ["auto"])  # as eval.metrics
    n: int = 0  # samples to score; 0 = the run's eval.num_samples
    num_real: int = 0  # reference images; 0 = the whole dataset (as eval.num_real)
    cache_dir: str | None = None  # as eval.cache_dir
    member: int | None = None  # population runs: which member to score


CHOICES: dict[str, tuple[str, ...]] = {
    "data.name": (
        "ring",
        "grid",
        "gaussian",
        "disk",
        "digits",
        "mnist",
        "fashion_mnist",
        "cifar10",
        "stacked_mnist",
        "npz",
        "folder",
        "csv",
    ),
    "model.name": ("mlp", "dcgan", "radford", "resnet", "ctgan"),
    "model.latent": ("normal", "uniform"),
    "model.g_output": ("linear", "tanh"),
    "model.init": ("default", "normal02"),
    "model.conditioning": ("none", "cgan", "acgan", "projection"),
    "model.compute_dtype": ("float32", "bfloat16"),
    "loss.name": ("minimax", "ns", "lsgan", "wgan", "wgan_gp", "hinge"),
    "optim.g.name": ("adam", "rmsprop", "sgd"),
    "optim.d.name": ("adam", "rmsprop", "sgd"),
    "optim.g.schedule": ("constant", "linear"),
    "optim.d.schedule": ("constant", "linear"),
    "logger.mode": ("offline", "online", "disabled"),
    "train.on_nonfinite": ("stop", "skip"),
    "parallel.backend": ("jit", "pmap"),
}
ACTIVATIONS = ("relu", "leaky_relu", "elu", "gelu", "silu", "tanh")
LOGISTIC_LOSSES = ("minimax", "ns", "lsgan")


def register_configs() -> None:
    """Put the schemas in Hydra's ConfigStore so `configs/config.yaml` can extend them."""
    cs = ConfigStore.instance()
    cs.store(name="config_schema", node=Config)
    cs.store(name="sample_schema", node=SampleConfig)
    cs.store(name="eval_schema", node=EvalRunConfig)


def _positive(value: float, key: str) -> None:
    if value <= 0:
        raise ConfigError(f"{key}={value} must be positive")


def validate(cfg: Config) -> Config:
    """Checks the constraints the schema types cannot express; raises ConfigError naming key and fix."""
    for key, allowed in CHOICES.items():
        node: Any = cfg
        for part in key.split("."):
            node = getattr(node, part)
        if node not in allowed:
            raise ConfigError(f"{key}={node!r} is not a valid choice; choose one of: {', '.join(allowed)}")
    for key in ("model.g_activation", "model.d_activation"):
        value = getattr(cfg.model, key.split(".")[1])
        if value not in ACTIVATIONS:
            raise ConfigError(f"{key}={value!r} is not a valid choice; choose one of: {', '.join(ACTIVATIONS)}")
    t = cfg.train
    for key in ("steps", "batch_size", "n_critic", "steps_per_call", "log_every", "ckpt_every", "keep_checkpoints"):
        _positive(getattr(t, key), f"train.{key}")
    _positive(cfg.model.z_dim, "model.z_dim")
    _positive(cfg.model.width_scale, "model.width_scale")
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
    if not 0.0 <= cfg.train.ema_decay < 1.0:
        raise ConfigError(f"train.ema_decay={cfg.train.ema_decay} must be in [0, 1) (0 turns the EMA off)")
    if not 0.0 <= cfg.model.g_dropout < 1.0:
        raise ConfigError(f"model.g_dropout={cfg.model.g_dropout} must be in [0, 1)")
    if not 0.0 <= cfg.loss.label_smoothing < 0.5:
        raise ConfigError(f"loss.label_smoothing={cfg.loss.label_smoothing} must be in [0, 0.5)")
    if not 0.0 <= cfg.loss.label_flip_prob < 0.5:
        raise ConfigError(f"loss.label_flip_prob={cfg.loss.label_flip_prob} must be in [0, 0.5)")
    if (cfg.loss.label_smoothing or cfg.loss.label_flip_prob) and cfg.loss.name not in LOGISTIC_LOSSES:
        raise ConfigError(
            f"loss.label_smoothing / loss.label_flip_prob apply to {', '.join(LOGISTIC_LOSSES)}, "
            f"not loss.name={cfg.loss.name!r}; set them to 0"
        )
    if cfg.data.name == "npz" and not cfg.data.path:
        raise ConfigError("data=npz needs data.path=FILE.npz (x: NHWC images, optional y: labels)")
    _validate_tabular(cfg)
    _validate_tricks(cfg)
    if cfg.data.sigma <= 0:
        raise ConfigError(f"data.sigma={cfg.data.sigma} must be positive")
    _validate_parallel(cfg)
    _validate_population(cfg)
    return cfg


def _validate_tabular(cfg: Config) -> None:
    """Tables and model=ctgan go together; its knobs have ranges."""
    is_table, is_ctgan = cfg.data.name == "csv", cfg.model.name == "ctgan"
    if is_table and not cfg.data.path:
        raise ConfigError("data=csv needs data.path=FILE.csv (a table with a header row)")
    if is_table != is_ctgan:
        raise ConfigError(
            "data=csv and model=ctgan go together (tables need the tabular generator and critic): "
            + ("add model=ctgan (or experiment=tabular_adult)" if is_table else "use data=csv data.path=FILE.csv")
        )
    if is_ctgan:
        if not 0.0 <= cfg.model.d_dropout < 1.0:
            raise ConfigError(f"model.d_dropout={cfg.model.d_dropout} must be in [0, 1)")
        _positive(cfg.model.gumbel_tau, "model.gumbel_tau")
        if cfg.model.cond_loss_weight < 0:
            raise ConfigError(f"model.cond_loss_weight={cfg.model.cond_loss_weight} must be >= 0")
    for opt_key in ("g", "d"):
        if getattr(cfg.optim, opt_key).weight_decay < 0:
            raise ConfigError(f"optim.{opt_key}.weight_decay must be >= 0")


def _validate_tricks(cfg: Config) -> None:
    """Ranges of the regularizers and augmentations, and the combinations they do not support."""
    from gan_jax.augment import POLICIES  # imported here: augment imports jax, config stays light to import

    loss, train = cfg.loss, cfg.train
    for key in ("aux_real_weight", "aux_fake_weight", "aux_g_weight", "r1_gamma"):
        if getattr(loss, key) < 0:
            raise ConfigError(f"loss.{key}={getattr(loss, key)} must be >= 0")
    _positive(loss.r1_every, "loss.r1_every")
    unknown = [op for op in train.augment if op not in POLICIES]
    if unknown:
        raise ConfigError(f"train.augment: unknown op(s) {unknown}; choose from {', '.join(POLICIES)}")
    if train.augment and cfg.data.name in TOY_AND_TABLE:
        raise ConfigError(f"train.augment (DiffAugment) applies to images, not data={cfg.data.name}; remove it")
    if train.instance_noise < 0 or train.instance_noise_steps < 0:
        raise ConfigError("train.instance_noise and train.instance_noise_steps must be >= 0")
    if cfg.model.attention_resolution < 0:
        raise ConfigError(f"model.attention_resolution={cfg.model.attention_resolution} must be >= 0 (0 = none)")
    if cfg.model.conditioning != "none":
        if cfg.data.name in TOY_AND_TABLE:
            raise ConfigError(
                f"model.conditioning={cfg.model.conditioning} needs labelled images (digits, mnist, fashion_mnist, "
                f"cifar10, folder, npz with y), not data={cfg.data.name}; set model.conditioning=none"
            )
        if cfg.model.pack > 1:
            raise ConfigError("model.pack > 1 (PacGAN) is unconditional; set model.pack=1 or model.conditioning=none")


TOY_AND_TABLE = ("ring", "grid", "gaussian", "disk", "csv")


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


POPULATION_LISTS = ("seeds", "lr_g", "lr_d", "gp_weight")


def _validate_population(cfg: Config) -> None:
    size, pop = cfg.train.population, cfg.population
    if size < 1:
        raise ConfigError(f"train.population={size} must be >= 1 (1 = a single GAN)")
    for key in POPULATION_LISTS:
        values = list(getattr(pop, key))
        if values and len(values) != size:
            raise ConfigError(
                f"population.{key} has {len(values)} values but train.population={size}; give one value per "
                f"member (or set train.population={len(values)})"
            )
    for key in ("lr_g", "lr_d"):
        if any(v <= 0 for v in getattr(pop, key)):
            raise ConfigError(f"population.{key}={list(getattr(pop, key))} must all be positive")
    if pop.gp_weight:
        if cfg.loss.name != "wgan_gp":
            raise ConfigError(f"population.gp_weight applies to loss=wgan_gp, not loss.name={cfg.loss.name!r}")
        if any(v < 0 for v in pop.gp_weight):
            raise ConfigError(f"population.gp_weight={list(pop.gp_weight)} must all be >= 0")
    if size > 1 and cfg.parallel.backend == "pmap":
        raise ConfigError(
            "train.population > 1 runs under parallel.backend=jit (members are vmapped inside one program); "
            "drop parallel.backend=pmap"
        )


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
            found += unknown_keys(node[key], hints[key], f"{name}.")
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
