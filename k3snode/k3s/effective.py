"""The K3s config as K3s itself reads it: every file, in K3s's order, with K3s's merge rules.

K3s (``pkg/configfilearg/parser.go``, ``readConfigFile``):

- starts from ``K3S_CONFIG_FILE`` when that is set and not empty (it wins over ``--config``), else
  ``/etc/rancher/k3s/config.yaml``; the file may be missing when drop-ins exist;
- then reads ``<config>.d/*.yaml`` and ``*.yml`` (suffix case-insensitive, directories skipped) in
  file-name order;
- decodes each file with ``gopkg.in/yaml.v2`` into an ordered list of items, so a key written
  twice in one file is not an error: both items are kept and the later one wins, exactly as a key
  set again in a later file replaces the earlier value;
- a key ending in ``+`` (``node-label+``) appends its value(s) to what the key has so far (a plain
  set when it has nothing yet).

k3snode writes one of these files. This module reads all of them — bounded: at most
``MAX_FILE_BYTES`` per file and ``MAX_DROPINS`` drop-ins, never following anything but the files
K3s would read, never writing. ``overrides.py`` says what that means for k3snode's keys (``apply``,
``check`` and the daemon's health report it); ``families.py`` what K3s's flannel will see.

K3s's environment files are the ones its installer's unit reads (``EnvironmentFile=``, in this
order): ``/etc/default/<unit>``, ``/etc/sysconfig/<unit>``, ``/etc/systemd/system/<unit>.service.env``
— for the unit named in ``[k3s] unit`` (``k3s``, ``k3s-agent``, or ``k3s-NAME`` from
``INSTALL_K3S_NAME``). ``--config`` in the unit's ``ExecStart`` is not read.
"""

from __future__ import annotations

import os
import stat
from typing import Any

from k3snode.k3s import yamlv2
from k3snode.presence import Presence
from k3snode.record import record

DEFAULT_CONFIG = "/etc/rancher/k3s/config.yaml"
MAX_FILE_BYTES = 1 << 20  # K3s config files are a few KiB; a bigger one is not read
MAX_ENV_BYTES = 64 << 10
MAX_DROPINS = 200
MAX_DIR_ENTRIES = 10 * MAX_DROPINS
UNIT_DIRS = (
    "/etc/systemd/system",
    "/run/systemd/system",
    "/lib/systemd/system",
    "/usr/lib/systemd/system",
)


@record
class Entry:
    """One top-level item of one file, as K3s's YAML library hands it over."""

    path: str
    line: int  # 1-based
    key: str  # without the trailing "+"
    append: bool  # written as "key+"
    value: Any

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"

    @property
    def written(self) -> str:
        return self.key + ("+" if self.append else "")


@record
class Source:
    """The config file K3s starts from, and why."""

    path: str
    origin: str  # "K3s's default" or "K3S_CONFIG_FILE in /etc/systemd/system/k3s.service.env"
    from_env: bool = False


@record
class View:
    """K3s's configuration as K3s reads it: its files in order and the entries they give."""

    source: Source
    files: tuple[str, ...]  # the files K3s reads, in its order (existing ones only)
    entries: tuple[Entry, ...]  # in K3s's order
    errors: tuple[str, ...] = ()  # files K3s would refuse or k3snode could not read

    def values(self) -> dict[str, Any]:
        """Key → value after K3s's merge (set replaces, ``key+`` appends)."""
        out: dict[str, Any] = {}
        for e in self.entries:
            if e.append and e.key in out:
                out[e.key] = as_list(out[e.key]) + as_list(e.value)
            else:
                out[e.key] = e.value
        return out

    def reads(self, path: str) -> bool:
        return os.path.normpath(path) in {os.path.normpath(p) for p in self.files} or (
            _read_by(self.source.path, path)
        )


def as_list(v: Any) -> list[Any]:
    if isinstance(v, list):
        return list(v)
    if v is None or (isinstance(v, str) and not v.strip()):
        return []
    return [v]


def _read_by(base: str, path: str) -> bool:
    """Whether K3s, started from ``base``, reads ``path`` (whether or not it exists yet)."""
    base, path = os.path.normpath(base), os.path.normpath(path)
    if path == base:
        return True
    return os.path.dirname(path) == base + ".d" and path.lower().endswith((".yaml", ".yml"))


def base_of(path: str) -> str:
    """The main config file of k3snode's ``[k3s] config``: itself, or the file its drop-in
    directory belongs to."""
    d = os.path.dirname(os.path.normpath(path))
    if d.endswith(".d") and path.lower().endswith((".yaml", ".yml")):
        return d[: -len(".d")]
    return os.path.normpath(path)


# --- reading, bounded -------------------------------------------------------------------------


def _read_bounded(path: str, limit: int) -> bytes | None:
    """The bytes of a regular file, None when it does not exist; ValueError when over ``limit``
    or not a regular file; OSError as raised."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb", buffering=0) as f:  # unbuffered: no isatty ioctl (ENOTTY)
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise ValueError("not a regular file")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"larger than {limit // 1024} KiB; not read")
    return data


def read_entries(path: str, text: str) -> list[Entry]:
    """The top-level items of one YAML document, duplicates kept, in order. ValueError when the
    document is not YAML or not a mapping with string keys (K3s refuses such a file)."""
    import yaml

    loader = yamlv2.loader()(text)  # plain scalars resolved as yaml.v2 resolves them
    try:
        node = loader.get_single_node()
        if node is None:
            return []
        if not isinstance(node, yaml.MappingNode):
            raise ValueError("not a mapping of K3s options")
        out = []
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise ValueError(f"line {key_node.start_mark.line + 1}: a key is not a string")
            key = key_node.value
            out.append(
                Entry(
                    path,
                    key_node.start_mark.line + 1,
                    key[:-1] if key.endswith("+") else key,
                    key.endswith("+"),
                    loader.construct_object(value_node, deep=True),
                )
            )
        return out
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ValueError(f"not valid YAML{where}: {problem}") from None
    except RecursionError:
        raise ValueError("nested too deeply") from None
    finally:
        loader.dispose()


def dropins(base: str, presence: Presence | None = None) -> tuple[list[str], str | None]:
    """The drop-ins K3s reads for ``base``, in its order, and a problem with the directory."""
    d = base + ".d"
    if not (presence or Presence()).exists(d):
        return [], None
    try:
        with os.scandir(d) as it:
            names = []
            for scanned, entry in enumerate(it, 1):
                if scanned > MAX_DIR_ENTRIES:
                    return [], f"{d}: more than {MAX_DIR_ENTRIES} entries; not read"
                if entry.name.lower().endswith((".yaml", ".yml")) and not entry.is_dir():
                    names.append(entry.name)
                if len(names) > MAX_DROPINS:
                    return [], f"{d}: more than {MAX_DROPINS} config files; not read"
    except FileNotFoundError:
        return [], None
    except NotADirectoryError:
        return [], None
    except OSError as e:
        return [], f"{d}: cannot list ({e.strerror or e})"
    return [os.path.join(d, n) for n in sorted(names, key=os.fsencode)], None


def env_files(unit: str, root: str = "/") -> list[str]:
    """The environment files the installer's unit ``unit`` reads, in systemd's order."""
    unit = unit[: -len(".service")] if unit.endswith(".service") else unit
    return [
        os.path.join(root, "etc/default", unit),
        os.path.join(root, "etc/sysconfig", unit),
        os.path.join(root, "etc/systemd/system", f"{unit}.service.env"),
    ]


def parse_env(text: str) -> dict[str, str]:
    """``KEY=VALUE`` lines of a systemd EnvironmentFile (comments, blank lines, quotes)."""
    out = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;" or "=" not in line:
            continue
        key, value = line.split("=", 1)
        key, value = key.strip(), value.strip()
        if key.startswith("export "):
            key = key[len("export ") :].strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        out[key] = value
    return out


def source(
    unit: str, root: str = "/", presence: Presence | None = None
) -> tuple[Source, list[str]]:
    """Where K3s's config starts for ``unit``, and problems reading its environment files."""
    presence = presence or Presence()
    found: Source | None = None
    problems = []
    for path in env_files(unit, root):
        if not presence.exists(path):
            continue
        try:
            raw = _read_bounded(path, MAX_ENV_BYTES)
        except (OSError, ValueError) as e:
            problems.append(f"{path}: cannot check for K3S_CONFIG_FILE ({_why(e)})")
            continue
        if raw is None:
            continue
        env = parse_env(raw.decode("utf-8", "replace"))
        if "K3S_CONFIG_FILE" in env:
            value = env["K3S_CONFIG_FILE"]
            # K3s ignores an empty value (findConfigFileFlag: envVal != "")
            found = Source(value, f"K3S_CONFIG_FILE in {path}", True) if value else None
    return found or Source(DEFAULT_CONFIG, "K3s's default"), problems


def _why(e: Exception) -> str:
    if isinstance(e, OSError):
        return e.strerror or str(e)
    return str(e)


def unit_installed(unit: str, root: str = "/", presence: Presence | None = None) -> bool:
    unit = unit if unit.endswith(".service") else f"{unit}.service"
    presence = presence or Presence()
    return any(presence.exists(os.path.join(root, d.lstrip("/"), unit)) for d in UNIT_DIRS)


def load(own_path: str, unit: str, root: str = "/") -> View:
    """Read what K3s reads. ``own_path``: k3snode's ``[k3s] config``; when no environment file
    names a config and no K3s unit is installed here (a test, an image being built), K3s is taken
    to start from the config k3snode writes. Missing files are learned from directory
    listings (``presence.py``): the health checks call this every 30 s."""
    presence = Presence()
    src, errors = source(unit, root, presence)
    if not src.from_env and not unit_installed(unit, root, presence):
        src = Source(base_of(own_path), "k3snode's [k3s] config (no K3s unit installed)")
    if "://" in src.path:
        return View(src, (), (), (*errors, f"K3s reads its config from {src.path} ({src.origin})"))
    files: list[str] = []
    entries: list[Entry] = []
    candidates, problem = dropins(src.path, presence)
    if problem:
        errors.append(problem)
    for path in [src.path, *candidates]:
        if not presence.exists(path):
            continue
        try:
            raw = _read_bounded(path, MAX_FILE_BYTES)
            if raw is None:
                continue
            got = read_entries(path, raw.decode("utf-8"))
        except UnicodeDecodeError:
            errors.append(f"{path}: not UTF-8 text")
            continue
        except (OSError, ValueError) as e:
            errors.append(f"{path}: {_why(e)}")
            continue
        files.append(path)
        entries.extend(got)
    return View(src, tuple(files), tuple(entries), tuple(errors))
