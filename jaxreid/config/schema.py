"""The configuration schema shared by every experiment.

`default_config()` lists every key the trainer understands, with its default. Experiment
configs in `configs/` start from it and override a few fields (`apply_quick` and
`parse_args` are shared by their `get_config(arg)`). What each key may hold is checked by
`jaxreid.config.validation` (one rule per key); a new key needs a line there too.
"""

from __future__ import annotations

import ml_collections

from jaxreid.config import choices
from jaxreid.config.errors import ConfigError

MODALITIES = choices.MODALITIES  # Modalities the data layer knows.


def default_config() -> ml_collections.ConfigDict:
    """Every key the trainer reads, with defaults for a one-stream network on the synthetic
    RGB-D set (the synthetic experiment configs start from them)."""
    config = ml_collections.ConfigDict()
    config.seed = 0
    # What a run does (jaxreid.methods.METHODS): 'supervised' (one network trained on the
    # identities of every modality, Hafner 2018 §3.1-3.2), 'distillation' (cross-modal
    # distillation, two steps, §3.3; config.distill) or 'classical' (LOMO / WHOS features and
    # XQDA, no network, §5.3; config.classical).
    config.method = "supervised"

    # --- data -------------------------------------------------------------------------------
    config.data = ml_collections.ConfigDict()
    config.data.name = "synthetic"  # A name of jaxreid.config.choices.DATASETS.
    config.data.data_dir = (
        ""  # TFDS data directory; '' = jaxreid's default (~/tensorflow_datasets).
    )
    config.data.manual_dir = ""  # Folder with the original archive contents (real datasets).
    # Folder layout of the manual data when a builder reads several: '' = as distributed;
    # 'processed' = the thesis author's processed images (BIWI, RobotPKU).
    config.data.layout = ""
    # Modalities trained on together. One entry: a single-modal network. Two: a one-stream
    # cross-modal network fed with batches that mix both (Hafner 2018, §3.1).
    config.data.modalities = ("rgb", "depth")
    # Dataset splits used for training, validation and test. An empty val_split holds out
    # fold `fold` of a `num_folds`-fold cross-validation over the training identities
    # (BIWI / RobotPKU design sets, Hafner 2018 §4.3.1; RegDB), drawn with `fold_seed`.
    config.data.train_split = "train"
    config.data.val_split = "val"
    config.data.test_split = "test"
    # Split holding the test queries when they are not images of `test_split` itself:
    # '' = none (every other protocol); Market-1501: 'query' (query/), with test_split
    # 'gallery' (bounding_box_test/), Zheng et al. 2015.
    config.data.query_split = ""
    config.data.fold = 0
    config.data.num_folds = 3
    config.data.fold_seed = 0
    config.data.num_val_ids = 0  # Validation identities per fold; 0 = a fifth of them.
    config.data.image_size = (64, 32)  # (height, width) fed to the network.
    # How the modalities share the network input (jaxreid.config.choices.INPUT_LAYOUTS):
    # 'shared' (3 channels, 1-channel modalities replicated; the one-stream network),
    # 'gray' (1 channel, RGB as luma; Tekeli 2019 §3.3), 'zero_pad' (3 channels, one per
    # modality, rest zero; Hafner 2018 §5.2.2), 'zero_pad2' (Wu et al. 2017's two channels).
    config.data.input_layout = "shared"
    # Per-modality normalisation: 'dataset' = mean/std of the training images of that modality;
    # 'imagenet' = torchvision's ImageNet statistics for every modality (for pretrained weights).
    config.data.normalization = "dataset"
    # Subtract each depth image's person distance (its 15th percentile of valid depths), so
    # that depth describes body shape rather than where the person stood.
    config.data.center_depth = True
    config.data.random_flip = True
    config.data.pad_crop = 4  # Pixels of zero padding before the random crop; 0 disables it.
    # Random erasing and channel augmentation (jaxreid.data.pipeline.train_batches), each a
    # probability per training image, 0 = off. random_erasing: a rectangle of every channel
    # set to 0 (Zhong et al. 2020). channel_erasing: the same in one random channel.
    # channel_exchange: one random channel (R, G or B) copied to all three; random_gray:
    # luma in all three (CAJ, Ye et al. 2021 ICCV §3.1). channel_modalities: the modalities
    # whose images get the channel operations; () = all.
    config.data.augment = ml_collections.ConfigDict()
    config.data.augment.random_erasing = 0.0
    config.data.augment.channel_erasing = 0.0
    config.data.augment.channel_exchange = 0.0
    config.data.augment.random_gray = 0.0
    config.data.augment.channel_modalities = ()
    # The thesis author's RandomSizedRectCrop (jaxreid.data.rect_crop): a box of 64-100 % of
    # the area with height / width 2-3, resized back to data.image_size (Hafner 2018's code,
    # open-reid/reid/utils/data/transforms.py lines 22-49); before the flip. Off by default.
    config.data.augment.random_sized_rect_crop = False
    # Options of the synthetic generator (ignored by the real datasets).
    config.data.synthetic = ml_collections.ConfigDict()
    config.data.synthetic.seed = 0
    config.data.synthetic.num_train_ids = 0  # 0 = the generator's default.
    config.data.synthetic.num_val_ids = 0
    config.data.synthetic.num_test_ids = 0
    config.data.synthetic.height = 0  # 0 = the generator's default render size.
    config.data.synthetic.width = 0

    # --- batches ----------------------------------------------------------------------------
    # P identities x K images per batch (Hermans et al. 2017); in cross-modal batches the K
    # images of an identity are split evenly over the modalities. P * K = global batch size.
    config.batch = ml_collections.ConfigDict()
    config.batch.num_identities = 8  # P
    config.batch.images_per_identity = 4  # K
    config.batch.eval_batch_size = 256  # Global; padded and masked, never dropped.
    # 'pk': P identities x K images as above. 'random': P*K images drawn uniformly from all
    # training images of every modality (Tekeli 2019 §4.2).
    config.batch.sampler = "pk"

    # --- model ------------------------------------------------------------------------------
    config.model = ml_collections.ConfigDict()
    config.model.backbone = "resnet18"
    # Channels of the first stage; 64 = the published ResNets. Half width by default, so that
    # the synthetic experiments train for enough epochs in minutes on a 2-core CPU (the main
    # job, configs/synthetic.py, uses a quarter width for four times as many steps).
    config.model.width = 32
    # Size of the embedding layer (Hafner 2018 §4.3.2: 128; §5.2.3.4 compares 32-2048 and C);
    # 0 = the classification layer is the embedding (size = number of training identities).
    config.model.embedding_size = 128
    config.model.dropout_rate = 0.5  # Hafner 2018, §4.3.2.
    # 'linear': embedding layer + fully-connected classifier (Hafner 2018 §2.2.2).
    # 'distance': the classifier replaced by -distance to class centres (Tekeli 2019 §3);
    # the embedding is then the pooled backbone output. 'bnneck': BatchNorm without shift on
    # the pooled features + bias-free classifier (Luo et al. 2019 §3.4; AGW); the embedding
    # is the feature after the BN ('bnneck'), 'pooled' the one before.
    config.model.head = "linear"
    config.model.distance = ml_collections.ConfigDict()
    config.model.distance.metric = "l2"  # 'l1' | 'l2' | 'sql2' | 'linf' | 'dot' (Eqs. 4-8)
    config.model.distance.center_update = "ema"  # 'sgd' | 'ema' | 'median' | 'midrange'
    config.model.distance.momentum = 0.7  # β of the running average, Tekeli 2019 Table 1.
    # Compute dtype (jaxreid.config.choices.DTYPES): 'bfloat16' / 'float16' run activations,
    # convolutions and matmuls in 16 bits with float32 parameters, optimiser state, BatchNorm
    # statistics, losses and features (Micikevicius et al. 2018, "Mixed Precision Training",
    # §3); 'float16' also needs dynamic loss scaling (§3.2). Replaces `half_precision`.
    config.model.dtype = "float32"
    # How convolutions are computed (jaxreid.models.convolution.CONV_IMPLS): 'auto' = im2col
    # + GEMM ('gemm', 1.4x the step rate of XLA's CPU convolutions on the main job) when
    # training on a CPU, XLA's convolutions otherwise; 'xla'; 'gemm'; 'gemm_wgrad'. The same
    # values within float32 reduction order.
    config.model.conv_impl = "auto"
    # Visible-infrared components of the AGW baseline (Ye et al. 2021, TPAMI §4.1):
    # global pooling 'avg' | 'gem' | 'max' (jaxreid.models.POOLINGS); GeM exponent (AGW 3,
    # fixed; Radenović et al. 2019 Eq. 2) and whether it is learned.
    config.model.pooling = "avg"
    config.model.gem_p = 3.0
    config.model.gem_learnable = False
    # Non-local blocks per ResNet stage after its last blocks (AGW: (0, 2, 3, 0)).
    config.model.non_local = (0, 0, 0, 0)
    # First stage shared by the modalities ('layer1'..'layer4', jaxreid.models.SHARED_FROM);
    # the layers before it have one copy per modality. '' = one stream (AGW: 'layer1').
    config.model.shared_from = ""
    config.model.last_stride = 2  # Stride of the last stage (AGW: 1).
    config.model.pretrained = ""  # Path to torchvision ResNet weights (.pth/.safetensors/.npz).

    # --- loss -------------------------------------------------------------------------------
    config.loss = ml_collections.ConfigDict()
    # Parts joined by '+' (jaxreid.losses.LOSS_PARTS): 'softmax', 'triplet' (batch hard),
    # 'wrt' (weighted regularised triplet, AGW; Ye et al. 2021 §4.1), e.g. 'softmax+wrt'.
    config.loss.name = "softmax"
    config.loss.triplet_margin = 0.5  # Hafner 2018, §4.3.2.
    config.loss.soft_margin = False
    # Features the triplet loss compares: '' = the embedding (ReLU(BN(Dense(pooled)))), or a
    # named intermediate output. With 'softmax+triplet', 'pooled' (the backbone's pooled
    # features; the "BNNeck" arrangement of Luo et al. 2019) avoids that the hinge drives
    # every ReLU unit of the embedding to zero, where both losses stop learning.
    config.loss.triplet_feature = ""
    # Triplet / WRT mining (jaxreid.losses.MINING): 'batch' = every other sample of the batch;
    # 'cross_modal' = positives and negatives only from the anchor's other modality.
    config.loss.mining = "batch"
    # Label smoothing of the softmax loss (Szegedy et al. 2016 §7: 0.1); AGW's code uses 0.
    config.loss.label_smoothing = 0.0
    # Weight w of the metric-learning part ('triplet' or 'wrt') in the total loss
    # softmax + w * metric (jaxreid.losses.compose); 1.0 = the plain sum (Hafner 2018 §4.3.2,
    # AGW, Ye et al. 2021 §4.1: both weigh the two parts equally).
    config.loss.metric_weight = 1.0

    # --- optimiser --------------------------------------------------------------------------
    # Hafner 2018 §4.3.2: SGD with Nesterov momentum for softmax, Adam for triplet.
    config.optim = ml_collections.ConfigDict()
    config.optim.name = "sgd"  # 'sgd' (Nesterov) | 'momentum' (plain) | 'adam'
    config.optim.learning_rate = 0.1
    config.optim.momentum = 0.9
    config.optim.weight_decay = 5e-4  # Coupled L2 on kernels, as torch.optim.SGD applies it.
    config.optim.schedule = "cosine"  # 'constant' | 'cosine' | 'step'
    config.optim.warmup_steps = 50
    config.optim.step_boundaries = ()  # Fractions of training for 'step'.
    config.optim.step_factor = 0.1
    config.optim.grad_clip_norm = 0.0  # 0 disables clipping.
    # Learning rate of params['backbone'] relative to the head's (jaxreid.models.
    # param_group_labels); AGW: 0.1 (Ye et al. 2021, code train.py).
    config.optim.backbone_lr_factor = 1.0
    # Schedule 'agw' (jaxreid.schedules.agw_schedule): linear warm-up over warmup_epochs
    # epochs, x0.1 at each of milestone_epochs (AGW code: 10; 20, 50). An epoch is
    # steps_per_epoch steps (0 = training images of the larger modality / batch size).
    config.optim.steps_per_epoch = 0
    config.optim.warmup_epochs = 10
    config.optim.milestone_epochs = (20, 50)

    # --- schedule of the run ----------------------------------------------------------------
    config.num_train_steps = 1500
    config.log_every_steps = 50
    config.eval_every_steps = 500  # Validation mAP; the best checkpoint is kept by it.
    config.checkpoint_every_steps = 250
    config.keep_checkpoints = 2

    # --- evaluation -------------------------------------------------------------------------
    config.eval = ml_collections.ConfigDict()
    # Of the test ('pairs' test protocol); jaxreid.evaluation.hafner / hafner_code:
    # 'hafner_text': the thesis text (§4.3.1): at most 50 queries per identity, a single-shot
    #   gallery drawn 10 times (eval.repeats), CMC and mAP on it;
    # 'hafner_code': as the author's code computed the published tables: 50 query and 50
    #   gallery images per identity drawn with replacement, mAP on that gallery, CMC from 15
    #   single-shot subsamples of it per query;
    # 'full': every image against every other (deterministic).
    config.eval.protocol = "hafner_text"
    # Validation uses every image (deterministic, so the best checkpoint is not chosen by the
    # luck of a gallery draw).
    config.eval.val_protocol = "full"
    # 'hafner_code' only (evaluate_cm in the author's code; Hafner 2018 §4.3.1): True applies
    # the camera rule of the test (mAP without same-identity same-camera images, CMC on other
    # cameras only): set it for SYSU-MM01 test sets. False relaxes it as for BIWI, RobotPKU
    # and every validation set (only the identical image is removed). Validation is always
    # relaxed.
    config.eval.camera_rule = False
    # 'hafner_code' only: reproduce the author's use_all masking exactly (the identical-image
    # mask is taken in gallery order, not ranked order; jaxreid.evaluation.hafner_code).
    config.eval.hafner_code_use_all_quirk = False
    config.eval.repeats = 10
    # 'hafner_text': at most this many queries per identity; 'hafner_code': exactly this many
    # query and gallery draws per identity, with replacement (50 in both, thesis §4.3.1).
    config.eval.max_queries_per_id = 50
    config.eval.metric = "euclidean"
    # The features ranked: '' = the model's embedding; or a named intermediate, e.g. 'pooled'.
    config.eval.feature = ""
    # Flip test: rank the mean of the features of each image and of its mirror image.
    config.eval.flip_test = False
    # Average precision (jaxreid.evaluation.ranking.AP_DEFINITIONS): 'non_interpolated'
    # (torchreid, SYSU-MM01 / RegDB code) or 'trapezoid' (Zheng et al. 2015's Market-1501 code;
    # with protocol 'hafner_code': scikit-learn 0.15's average_precision_score, the release the
    # thesis author's environment.yml pins, where the default is scikit-learn >= 0.19's).
    config.eval.ap = "non_interpolated"
    config.eval.seed = 0
    # Validation mAP used to keep the best checkpoint: the mean over these query/gallery
    # modality pairs. Empty = the cross-modal pairs when two modalities are trained, else the
    # single modality.
    config.eval.val_pairs = ()
    # The final test: 'pairs' (every query/gallery modality pair with `protocol`; Hafner 2018
    # Tables 5-16), 'sysu' (SYSU-MM01: infrared queries, RGB gallery, all/indoor x
    # single/multi-shot, 10 trials; Tekeli 2019 Table 3) or 'regdb' (both directions of one
    # trial's test split; Tekeli 2019 Table 4).
    config.eval.test_protocol = "pairs"
    # SYSU-MM01 gallery sampling: 'official' (rand_perm_cam.mat given by sysu_perm_file) or
    # 'seeded' (the widely used Python re-implementation's random.seed(trial) draws).
    config.eval.sysu_sampler = "seeded"
    config.eval.sysu_perm_file = ""
    # SYSU-MM01 settings to test (jaxreid.evaluation.SYSU_SETTINGS).
    config.eval.sysu_settings = ("all_single", "all_multi", "indoor_single", "indoor_multi")
    # LLCM (Zhang & Wang 2023; jaxreid.evaluation.llcm): which computation 'vis_to_ir' is,
    # 'released' (DEEN/test.py: sampled IR images rank every VIS image; the published
    # figures) or 'vis_queries' (every VIS image against the sampled IR gallery); trials of
    # the gallery draw (10 in the released test code).
    config.eval.llcm_vis_to_ir = "released"
    config.eval.llcm_trials = 10
    # k-reciprocal re-ranking of the test distances (Zhong et al. 2017), off by default; when
    # on, results carry 'rerank' and their titles say so. Paper defaults (§4.3): 20, 6, 0.3.
    config.eval.rerank = False
    config.eval.rerank_k1 = 20  # k1: k-reciprocal neighbourhood size (Eq. 8).
    config.eval.rerank_k2 = 6  # k2: local query expansion neighbours (Eq. 14); 1 = none.
    config.eval.rerank_lambda = 0.3  # lambda: weight of the original distance (final mix).

    # --- cross-modal distillation (config.method='distillation'; Hafner 2018 §3.3) -----------
    # Step I trains F on `source_modality` alone with the settings above (data.modalities
    # reduced to the source); Step II trains G on the other modality of data.modalities to
    # reproduce F's embedding of the paired source frame (MSE), with its own optimiser below.
    config.distill = ml_collections.ConfigDict()
    config.distill.source_modality = "depth"  # F's modality; must be one of data.modalities.
    # A finished Step I workdir to start Step II from; '' = train Step I in <workdir>/step1.
    config.distill.teacher_workdir = ""
    # First layer of G that is frozen, everything after it in the forward order (up to and
    # including the embedding head) is frozen too: 'stem' | 'layer<i>' | 'layer<i>_<j>' |
    # 'layer<i>_<j>/<conv or bn>' | 'embedding' | 'embedding_bn' | 'classifier' | 'none' (no
    # freezing; Hafner 2018 appendix D, Table 3) | 'auto' (the thesis author's code: the first
    # 256-channel layer of ResNet18/34 = 'layer3', the first 1024-channel layer of ResNet50 =
    # 'layer3_0/conv3').
    config.distill.freeze_from = "auto"
    # BatchNorm of the frozen layers: 'fixed' = inference mode with F's running statistics
    # (and no dropout in the frozen head), so the frozen part computes exactly F's function
    # (the paper's intent); 'update' = training mode, running statistics keep updating (the
    # author's code, which only sets requires_grad=False).
    config.distill.frozen_bn = "fixed"
    config.distill.copy_weights = True  # False: G starts from its own initialisation (Table 3).
    # Step II targets: 'paired' = F's embedding of the simultaneous source frame (same
    # frame_id); 'class_mean' = mean F embedding of the identity's source training images
    # (Hafner 2018 §5.2.3.3, for unpaired data such as RGB-infrared); 'auto' = 'paired' if the
    # target images have paired source frames, else 'class_mean'.
    config.distill.targets = "auto"
    # jaxreid.losses.mse_distillation reduction: 'sum' is the author's nn.MSELoss(
    # size_average=False); 'per_sample' is Hafner 2018 Eq. 6; 'mean' is per element.
    config.distill.loss_reduction = "sum"
    # Which Step II checkpoint is tested: 'val_loss' (lowest validation MSE; Hafner 2018
    # Algorithm 1) or 'val_mAP' (highest cross-modal validation mAP; the author's code keeps
    # the epoch with the highest sum of the two cross-modal validation mAPs: the value
    # `evaluate_cm` returns to transfer-reid/retrainer.py, which it names `top1`).
    config.distill.early_stopping = "val_loss"
    config.distill.num_train_steps = 1000
    config.distill.eval_every_steps = 250
    # Step II optimiser, same keys as config.optim. The author's code: SGD (Nesterov, momentum
    # 0.9, weight decay 5e-4) at lr 2e-6 on the summed MSE of batches of 64 (retrainer.py).
    config.distill.optim = ml_collections.ConfigDict()
    config.distill.optim.name = "sgd"
    config.distill.optim.learning_rate = 2e-6
    config.distill.optim.momentum = 0.9
    config.distill.optim.weight_decay = 5e-4  # Trainable (unfrozen) kernels only.
    config.distill.optim.schedule = "constant"
    config.distill.optim.warmup_steps = 0
    config.distill.optim.step_boundaries = ()
    config.distill.optim.step_factor = 0.1
    config.distill.optim.grad_clip_norm = 0.0

    # --- conventional baselines (config.method='classical'; Hafner 2018 §5.3) ---------------
    config.classical = ml_collections.ConfigDict()
    config.classical.features = "lomo"  # 'lomo' (Liao 2015 §3) | 'whos' (Lisanti 2015 §3.1)
    config.classical.matching = "xqda"  # 'euclidean' | 'xqda' (Liao 2015 §4)
    config.classical.xqda_lambda = 0.001  # Σ_I regulariser of Liao's published XQDA code.
    config.classical.qda_dims = -1  # XQDA subspace size; <= 0: latent values > 1 (Liao 2015 §4.2).
    # How XQDA finds its subspace: 'svd' as the published XQDA.m (which produced Hafner 2018
    # Tables 17/18) or 'eig', the generalised eigenproblem of Liao 2015 Eq. 14.
    config.classical.xqda_solver = "svd"
    config.classical.image_size = (128, 48)  # Extractor input; Liao 2015 §5.1 (WHOS: 128x64).
    config.classical.batch_size = 64  # Images per jit-compiled extraction call.
    # XQDA training images per identity and modality; 0 = all (a cap keeps Σ's size bounded).
    config.classical.train_images_per_id = 0
    # XQDA also learns from the fold's validation identities (the networks only select their
    # checkpoint with them; the thesis does not say which identities its XQDA saw).
    config.classical.use_val_ids = False
    return config


# Boolean keys an earlier jaxreid had (until 2026-12-07), and the config.method value that
# replaced True: a config file or override that sets one is refused naming it
# (jaxreid.config.files, validation); a saved run that has one is read with its replacement
# (jaxreid.workdir.config_from_dict).
REMOVED_KEYS = {"distill.enabled": "distillation", "classical.enabled": "classical"}


def removed_key_message(key: str) -> str:
    """The refusal of a REMOVED_KEYS entry `key` ('distill.enabled'), naming its replacement."""
    method = REMOVED_KEYS[key]
    return (
        f"config.{key} was removed: set config.method={method!r} instead "
        f"(--config.method={method}; config.method is one of {choices.METHODS})."
    )


def apply_quick(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """A reduced-width network for a few steps at 32x16 (tests and smoke checks, < 2 min).

    Shared by every config's `:quick` argument; the synthetic sizes are ignored by the real
    datasets.
    """
    config.model.width = 8
    config.model.embedding_size = min(config.model.embedding_size, 32)  # 0 stays 0.
    config.data.image_size = (32, 16)
    config.data.synthetic.num_train_ids = 12
    config.data.synthetic.num_val_ids = 6
    config.data.synthetic.num_test_ids = 6
    config.batch.num_identities = 4
    config.batch.images_per_identity = 2 * len(config.data.modalities)
    config.batch.eval_batch_size = 64
    config.num_train_steps = 20
    config.log_every_steps = 5
    config.eval_every_steps = 10
    config.checkpoint_every_steps = 10
    config.optim.warmup_steps = 2
    config.eval.repeats = 2
    config.eval.sysu_sampler = "seeded"
    config.eval.sysu_settings = ("all_single", "indoor_single")
    config.distill.num_train_steps = 20
    config.distill.eval_every_steps = 10
    return config


def parse_args(arg: str, known: tuple[str, ...]) -> dict[str, str]:
    """'quick,trial=3' -> {'quick': '', 'trial': '3'}.

    Raises:
      ConfigError: an argument not in `known` (the message lists them).
    """
    out = {}
    for item in filter(None, arg.split(",")):
        name, _, value = item.partition("=")
        if name not in known:
            raise ConfigError(f"Unknown config argument {name!r}; expected some of {known}.")
        out[name] = value
    return out
