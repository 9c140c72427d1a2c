"""Kinds of configuration value: each checks a value (``accepts``) and says what it accepts
(``str``). Durations and sizes are read as Dask reads them (``dask.utils``); walltimes as SLURM does."""
from __future__ import annotations

import re
from dataclasses import dataclass
from numbers import Real

from dask.utils import parse_bytes, parse_timedelta


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, Real) and not isinstance(v, bool)


@dataclass(frozen=True)
class Number:
    """A number (an integer when ``integer``) within [lo, hi]; ``open_lo``/``open_hi`` exclude an end."""
    lo: float | None = None
    hi: float | None = None
    integer: bool = False
    open_lo: bool = False
    open_hi: bool = False
    null: bool = False

    def accepts(self, v) -> bool:
        if v is None:
            return self.null
        if not (_is_int(v) if self.integer else _is_number(v)):
            return False
        return ((self.lo is None or (v > self.lo if self.open_lo else v >= self.lo))
                and (self.hi is None or (v < self.hi if self.open_hi else v <= self.hi)))

    def __str__(self) -> str:
        what = "an integer" if self.integer else "a number"
        if self.lo is not None and self.hi is not None:
            what += f" in {'(' if self.open_lo else '['}{self.lo:g}, {self.hi:g}{')' if self.open_hi else ']'}"
        elif self.lo is not None:
            what += f" {'>' if self.open_lo else '>='} {self.lo:g}"
        return what + (", or null" if self.null else "")


def Int(lo=None, hi=None, null=False) -> Number:
    return Number(lo, hi, integer=True, null=null)


@dataclass(frozen=True)
class Choice:
    options: tuple

    def accepts(self, v) -> bool:
        return isinstance(v, str) and v in self.options

    def __str__(self) -> str:
        return "one of " + ", ".join(self.options)


@dataclass(frozen=True)
class Flag:
    def accepts(self, v) -> bool:
        return isinstance(v, bool)

    def __str__(self) -> str:
        return "true or false"


@dataclass(frozen=True)
class Text:
    """A non-empty string (a name, a path, a command); null allowed when ``null``."""
    what: str = "a string"
    null: bool = False

    def accepts(self, v) -> bool:
        return (v is None and self.null) or (isinstance(v, str) and v.strip() != "")

    def __str__(self) -> str:
        return self.what + (", or null" if self.null else "")


def duration_seconds(value) -> float | None:
    """A duration ('5m', '10min', '300s', '1h', or a number of seconds; dask.utils.parse_timedelta,
    which also reads 'min' and 'sec' here, as earlier versions of this project did) in seconds; None
    if it is not one."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    if isinstance(value, str):
        value = re.sub(r"(?<=[\d\s])(min|sec)$", lambda m: m.group(1)[0], value.strip())
    try:
        return float(parse_timedelta(value, default="seconds"))
    except (KeyError, ValueError, IndexError, TypeError):
        return None


@dataclass(frozen=True)
class Duration:
    at_least_s: float = 0

    def accepts(self, v) -> bool:
        s = duration_seconds(v)
        return s is not None and s >= self.at_least_s

    def __str__(self) -> str:
        return f"a duration like '10m', '300s', '1h' or 0, at least {self.at_least_s:g} s"


_WALLTIME = re.compile(r"(?:(\d+)-)?(\d+):([0-5]\d):([0-5]\d)")


def walltime_seconds(value) -> int | None:
    """SLURM's 'HH:MM:SS' or 'D-HH:MM:SS' as seconds; None if it is neither. An integer is seconds:
    YAML 1.1 reads an unquoted 10:00:00 as the sexagesimal 36000."""
    if _is_int(value):
        return value
    m = _WALLTIME.fullmatch(value.strip()) if isinstance(value, str) else None
    if not m:
        return None
    days, hours, minutes, seconds = (int(g or 0) for g in m.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


@dataclass(frozen=True)
class Walltime:
    def accepts(self, v) -> bool:
        return (walltime_seconds(v) or 0) > 0

    def __str__(self) -> str:
        return "a SLURM time HH:MM:SS or D-HH:MM:SS, not zero"


def size_bytes(value) -> int | None:
    """A size with a unit ('4GB', '500MiB'; dask.utils.parse_bytes, as dask-jobqueue reads it) in
    bytes; None if it is not one (a bare number is not: SLURM and Dask read its unit differently)."""
    if not isinstance(value, str) or not re.search(r"[a-zA-Z]", value) or not re.search(r"\d", value):
        return None
    try:
        return parse_bytes(value)
    except ValueError:
        return None


@dataclass(frozen=True)
class Size:
    def accepts(self, v) -> bool:
        return (size_bytes(v) or 0) >= 2**20

    def __str__(self) -> str:
        return "a size with a unit, like 4GB or 500MB, at least 1MiB"


@dataclass(frozen=True)
class List:
    """A list of items the kind ``item`` accepts; ``distinct``, ``increasing``, ``length``, ``empty``."""
    item: object
    empty: bool = False
    distinct: bool = False
    increasing: bool = False
    length: int | None = None

    def accepts(self, v) -> bool:
        return (isinstance(v, list) and all(self.item.accepts(x) for x in v) and (self.empty or len(v) > 0)
                and (not self.distinct or len(set(v)) == len(v))
                and (not self.increasing or list(v) == sorted(set(v)))
                and (self.length is None or len(v) == self.length))

    def __str__(self) -> str:
        shape = (f"a list of {self.length}" if self.length else "a list" if self.empty else "a non-empty list")
        shape += " increasing" if self.increasing else " distinct" if self.distinct else ""
        return f"{shape}, each {self.item}"


@dataclass(frozen=True)
class Directive:
    def accepts(self, v) -> bool:
        return isinstance(v, str) and v.strip().startswith("-")

    def __str__(self) -> str:
        return "an sbatch option like '--qos=normal' (no '#SBATCH')"


@dataclass(frozen=True)
class Security:
    def accepts(self, v) -> bool:
        return isinstance(v, bool) or (isinstance(v, dict) and set(v) == {"ca_file", "cert", "key"}
                                       and all(isinstance(x, str) and x.strip() for x in v.values()))

    def __str__(self) -> str:
        return "true, false, or PEM file paths {ca_file: ..., cert: ..., key: ...}"
