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
    keyword: str = ""  # an example passed it by name (`unet(x, time=t)`): see `in_forward_order`

    @property
    def text(self) -> str:
        """`16,1,32,32` or `16,20:int64`: the form `--input` takes."""
        sizes = ",".join(str(size) for size in self.shape)
        return sizes if self.dtype == "float32" else f"{sizes}:{self.dtype}"


def in_forward_order(specs, parameters) -> tuple[InputSpec, ...] | None:
    """Example inputs with those passed by name moved to their parameter's place in `parameters`
    (the names of forward's positional parameters, in order), so that the model can be called
    with them positionally: `unet(x, time=t, labels=y)` for `forward(self, x, time, labels=None)`
    gives (x, t, y). None when a name is not a parameter or a parameter before it is left out."""
    positional = [s for s in specs if not s.keyword]
    named = {s.keyword: s for s in specs if s.keyword}
    ordered = list(positional)
    for name in parameters[len(positional):]:
        if not named:
            break
        if name not in named:
            return None
        spec = named.pop(name)
        ordered.append(InputSpec(spec.shape, spec.dtype))
    return tuple(ordered) if not named else None
