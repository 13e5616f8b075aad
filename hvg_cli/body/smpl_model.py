"""`--body-model PATH`: rest joints and a skinned template mesh from the user's SMPL / SMPL-X files.

hvg ships no body model (SMPL's licence forbids it). A user who has one passes the file:

- SMPL ``.pkl`` (``SMPL_NEUTRAL.pkl`` ...): keys v_template [V, 3], shapedirs [V, 3, B], posedirs
  [V, 3, 207], J_regressor [24, V] (often scipy sparse), weights [V, 24], kintree_table [2, 24], f [F, 3].
  Read with a restricted unpickler that only builds numpy arrays and scipy sparse matrices, so a
  .pkl cannot run code. Files that store chumpy objects are refused with a hint to convert them.
- SMPL-X ``.npz`` (``SMPLX_NEUTRAL.npz``): the same keys with 55 joints (J_regressor [55, V], weights
  [V, 55], posedirs [V, 3, 486]); read with ``allow_pickle=False``.

The rest pose is the template (betas = 0, or given betas) in its T-pose: y up, facing +z, metres; hvg
moves the pelvis joint to the origin. SMPL-X's extra joints fold into SMPL's 24: jaw and eyes into the
head, each hand's 15 finger joints into SMPL's hand joint (placed at the mean of the four knuckles).
Shape blending uses smplx's own `blend_shapes` / `vertices2joints` (smplx is imported lazily).
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hvg_cli.core.errors import BadInput, MissingDependency
from hvg_cli.core.types import SMPL_PARENTS, Skeleton

# SMPL-X joint layout: 0-21 body (as SMPL), 22 jaw, 23-24 eyes, 25-39 left hand, 40-54 right hand.
_SMPLX_NUM_JOINTS = 55
_SMPLX_LEFT_KNUCKLES = (25, 28, 31, 34)  # index1, middle1, pinky1, ring1
_SMPLX_RIGHT_KNUCKLES = (40, 43, 46, 49)
_HEAD, _LEFT_HAND, _RIGHT_HAND = 15, 22, 23


@dataclass(frozen=True, eq=False)
class BodyModel:
    """A body model's rest template folded onto SMPL's 24 joints."""

    kind: str  # "smpl" | "smplx"
    vertices: np.ndarray  # [V, 3] rest (T-pose) vertices, metres, pelvis joint at the origin, y up, facing +z
    faces: np.ndarray  # [F, 3] int
    joints: np.ndarray  # [24, 3] rest joints, metres, pelvis at the origin
    weights: np.ndarray  # [V, 24] linear blend skinning weights, rows sum to 1

    @property
    def skeleton(self) -> Skeleton:
        return Skeleton(rest_joints=self.joints.copy(), parents=SMPL_PARENTS)

    @property
    def vertex_joint(self) -> np.ndarray:
        """[V] int: the joint each vertex follows most (argmax of its skinning weights)."""
        return np.argmax(self.weights, axis=1)

    def scaled(self, factor: float) -> BodyModel:
        """The same body uniformly scaled about the pelvis (e.g. to the photo's height)."""
        return BodyModel(self.kind, self.vertices * factor, self.faces, self.joints * factor, self.weights)


# ---------------------------------------------------------------------------------------------
# reading files
# ---------------------------------------------------------------------------------------------
_ALLOWED_PICKLE = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("scipy.sparse.csc", "csc_matrix"),
    ("scipy.sparse._csc", "csc_matrix"),
    ("scipy.sparse.csr", "csr_matrix"),
    ("scipy.sparse._csr", "csr_matrix"),
    ("scipy.sparse._csc", "csc_array"),
    ("scipy.sparse._csr", "csr_array"),
    ("_codecs", "encode"),  # how Python 3 writes array bytes in protocol-2 pickles
    ("copyreg", "_reconstructor"),
    ("builtins", "object"),  # old-protocol objects (Python 2 files); classes still filtered
}


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Builds numpy arrays and scipy sparse matrices, nothing else (no code runs from the file)."""

    def find_class(self, module: str, name: str):  # noqa: D401
        if (module, name) in _ALLOWED_PICKLE:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name}")


def _read_pkl(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            data = _ArraysOnlyUnpickler(f, encoding="latin1").load()
    except pickle.UnpicklingError as e:
        if "chumpy" in str(e):
            raise BadInput(
                f"{path} stores chumpy objects, which hvg does not unpickle",
                "convert it to plain numpy arrays (e.g. a SMPL .npz) and pass that file",
            ) from None
        raise BadInput(
            f"{path} is not a SMPL model file hvg can read ({e})",
            "pass SMPL_NEUTRAL.pkl / SMPLX_NEUTRAL.npz as downloaded",
        ) from None
    except (OSError, EOFError, ValueError) as e:
        raise BadInput(f"cannot read {path}: {e}", "pass SMPL_NEUTRAL.pkl / SMPLX_NEUTRAL.npz as downloaded") from None
    if not isinstance(data, dict):
        raise BadInput(f"{path} is not a SMPL model file (no dictionary inside)", "pass SMPL_NEUTRAL.pkl as downloaded")
    return data


def _read_npz(path: Path, keys: tuple[str, ...]) -> dict:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in keys if k in z.files}
    except (OSError, ValueError, EOFError) as e:
        raise BadInput(f"cannot read {path}: {e}", "pass SMPLX_NEUTRAL.npz as downloaded") from None


def _dense(a) -> np.ndarray:
    """numpy array from an array or a scipy sparse matrix, float64."""
    if hasattr(a, "toarray"):
        a = a.toarray()
    return np.asarray(a, dtype=np.float64)


_KEYS = ("v_template", "shapedirs", "J_regressor", "weights", "kintree_table", "f")


def read_model_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of a SMPL / SMPL-X file, dense float64, checked: v_template [V, 3], shapedirs [V, 3, B],
    J_regressor [J, V], weights [V, J], f [F, 3] (J = 24 or 55). Raises BadInput naming the file."""
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"body model file not found: {path}", "pass the path of SMPL_NEUTRAL.pkl or SMPLX_NEUTRAL.npz")
    data = _read_pkl(path) if path.suffix.lower() == ".pkl" else _read_npz(path, _KEYS)
    missing = [k for k in _KEYS if k not in data]
    if missing:
        raise BadInput(
            f"{path} lacks {', '.join(missing)}: not a SMPL / SMPL-X model file",
            "pass SMPL_NEUTRAL.pkl or SMPLX_NEUTRAL.npz as downloaded",
        )
    try:
        v_template = _dense(data["v_template"])  # [V, 3]
        shapedirs = _dense(data["shapedirs"])  # [V, 3, B]
        J_regressor = _dense(data["J_regressor"])  # [J, V]
        weights = _dense(data["weights"])  # [V, J]
        kintree = np.asarray(data["kintree_table"]).astype(np.int64)  # [2, J]
        faces = np.asarray(data["f"]).astype(np.int64)  # [F, 3]
    except (TypeError, ValueError) as e:
        raise BadInput(
            f"{path}: unexpected array in the model file ({e})", "pass SMPL_NEUTRAL.pkl as downloaded"
        ) from None
    V = v_template.shape[0]
    J = J_regressor.shape[0]
    if (
        v_template.shape != (V, 3)
        or shapedirs.ndim != 3
        or shapedirs.shape[:2] != (V, 3)
        or J_regressor.shape != (J, V)
        or weights.shape != (V, J)
        or J not in (24, _SMPLX_NUM_JOINTS)
    ):
        raise BadInput(
            f"{path}: array shapes do not form a SMPL ({24}) or SMPL-X ({_SMPLX_NUM_JOINTS}) model "
            f"(v_template {v_template.shape}, J_regressor {J_regressor.shape}, weights {weights.shape})",
            "pass SMPL_NEUTRAL.pkl or SMPLX_NEUTRAL.npz as downloaded",
        )
    parents = kintree[0, :22].copy()  # the 22 body joints are SMPL's in both models (SMPL-X's 22-24 are jaw, eyes)
    parents[0] = -1
    if kintree.shape != (2, J) or tuple(int(p) for p in parents) != SMPL_PARENTS[:22]:
        raise BadInput(f"{path}: its kinematic tree is not SMPL's", "pass a SMPL or SMPL-X body model file")
    return {
        "v_template": v_template,
        "shapedirs": shapedirs,
        "J_regressor": J_regressor,
        "weights": weights,
        "f": faces,
    }


def body_from_arrays(arrays: dict[str, np.ndarray], betas: np.ndarray | None = None) -> BodyModel:
    """The shaped template of a model (arrays from `read_model_arrays`), folded onto SMPL-24, pelvis at 0.

    betas: [B] shape coefficients (None: the template, betas = 0; fewer than B: the rest are 0)
    """
    v_template, shapedirs, J_regressor = arrays["v_template"], arrays["shapedirs"], arrays["J_regressor"]
    weights, faces = arrays["weights"], arrays["f"]
    V, J = weights.shape
    try:
        import torch
        from smplx.lbs import blend_shapes, vertices2joints
    except ImportError as e:
        raise MissingDependency("smplx (and torch) are needed for --body-model", "pip install smplx torch") from e

    # 1. Shaped template: v = v_template + shapedirs · betas (smplx's blend_shapes), joints from J_regressor
    B = shapedirs.shape[2]
    b = np.zeros(B) if betas is None else np.asarray(betas, dtype=np.float64)[:B]
    b = np.pad(b, (0, B - b.shape[0]))
    with torch.no_grad():
        v = torch.from_numpy(v_template)[None] + blend_shapes(torch.from_numpy(b)[None], torch.from_numpy(shapedirs))
        joints_all = vertices2joints(torch.from_numpy(J_regressor), v)[0].numpy()  # [J, 3]
        vertices = v[0].numpy()  # [V, 3]

    # 2. Fold onto SMPL-24
    if J == _SMPLX_NUM_JOINTS:
        kind = "smplx"
        joints = joints_all[:24].copy()
        joints[_LEFT_HAND] = joints_all[list(_SMPLX_LEFT_KNUCKLES)].mean(axis=0)
        joints[_RIGHT_HAND] = joints_all[list(_SMPLX_RIGHT_KNUCKLES)].mean(axis=0)
        w = np.zeros((V, 24))
        w[:, :22] = weights[:, :22]
        w[:, _HEAD] += weights[:, 22:25].sum(axis=1)  # jaw, eyes
        w[:, _LEFT_HAND] = weights[:, 25:40].sum(axis=1)
        w[:, _RIGHT_HAND] = weights[:, 40:55].sum(axis=1)
    else:
        kind = "smpl"
        joints = joints_all
        w = weights
    w = w / np.maximum(w.sum(axis=1, keepdims=True), 1e-12)

    # 3. Pelvis to the origin
    pelvis = joints[0].copy()
    return BodyModel(kind=kind, vertices=vertices - pelvis, faces=faces, joints=joints - pelvis, weights=w)


def load_body_model(path: str | Path, betas: np.ndarray | None = None) -> BodyModel:
    """Read a SMPL (.pkl / .npz) or SMPL-X (.npz / .pkl) file and fold it onto SMPL's 24 joints.

    path:    the model file
    betas:   [B] shape coefficients (None: the template, betas = 0)
    returns: BodyModel with pelvis at the origin
    raises:  BadInput for unreadable files or missing keys; MissingDependency without smplx/torch
    """
    return body_from_arrays(read_model_arrays(path), betas)


def fit_body_model(
    path: str | Path, skeleton: Skeleton, num_betas: int = 10, ridge: float = 0.05
) -> tuple[BodyModel, np.ndarray]:
    """The model's shape closest to a skeleton's bone lengths (e.g. the photo's), then scaled to its size.

    Joints are affine in the betas (J_regressor · (v_template + shapedirs · b)), so the betas and a free
    size s solve a ridge least-squares problem J0 + A b = s · target, the target built along the model's
    own rest directions with the skeleton's bone lengths. A uniform scale then matches the body size
    (spine + leg) exactly.

    skeleton: target rest skeleton (bone lengths are what matter)
    ridge:    weight of ||b||^2 relative to the mean squared column norm of the linear map (keeps b plausible)
    returns:  (BodyModel scaled to the skeleton's size, betas [num_betas])
    """
    arrays = read_model_arrays(path)
    B = min(int(num_betas), arrays["shapedirs"].shape[2])
    base = body_from_arrays(arrays)
    J0 = base.joints  # [24, 3]
    A = np.stack([(body_from_arrays(arrays, np.eye(B)[k]).joints - J0).ravel() for k in range(B)], axis=1)  # [72, B]
    dirs = base.skeleton.offsets / np.maximum(np.linalg.norm(base.skeleton.offsets, axis=-1, keepdims=True), 1e-12)
    L = skeleton.bone_lengths
    target = np.zeros((24, 3))
    for j in range(1, 24):
        target[j] = target[SMPL_PARENTS[j]] + dirs[j] * L[j]
    # shape up to size: J0 + A b = s * target, linear in (b, s); the ridge acts on b only
    M = np.concatenate([A, -target.reshape(-1, 1)], axis=1)  # [72, B + 1]
    lam = ridge * float(np.mean(np.sum(A * A, axis=0)))
    reg = lam * np.diag(np.r_[np.ones(B), 0.0])
    b = np.linalg.solve(M.T @ M + reg, -M.T @ J0.ravel())[:B]  # [B]
    shaped = body_from_arrays(arrays, b)
    return shaped.scaled(body_size(skeleton) / max(body_size(shaped.skeleton), 1e-9)), b


def body_size(skeleton: Skeleton) -> float:
    """Spine (pelvis -> neck) plus mean leg length, metres: the size a body model is scaled to."""
    L = skeleton.bone_lengths
    return float(L[[3, 6, 9, 12]].sum() + 0.5 * (L[[1, 4, 7]].sum() + L[[2, 5, 8]].sum()))
