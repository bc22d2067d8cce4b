"""One forward argument's shape and dtype, as the user writes it: the vocabulary of hints,
flags, config and examples."""

from __future__ import annotations

from dataclasses import dataclass

DTYPES = {
    "float32": "float32", "float": "float32", "float16": "float16", "half": "float16",
    "bfloat16": "bfloat16", "float64": "float64", "double": "float64",
    "int64": "int64", "long": "int64", "int32": "int32", "int": "int32",
    "int16": "int16", "short": "int16", "int8": "int8", "uint8": "uint8", "bool": "bool",
}


@dataclass(frozen=True)
class InputSpec:
    """One forward argument: its shape and dtype name (a key of `DTYPES`' values)."""

    shape: tuple[int, ...]
    dtype: str = "float32"

    @property
    def text(self) -> str:
        """`16,1,32,32` or `16,20:int64`: the form `--input` takes."""
        sizes = ",".join(str(size) for size in self.shape)
        return sizes if self.dtype == "float32" else f"{sizes}:{self.dtype}"
