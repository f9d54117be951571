"""Path containment: every file a split manifest names must lie inside its dataset root.

One rule for every source (LuojiaSET-OSFCR, SEN12MS-CR, the synthetic twin) and for checksum
verification. A manifest path is refused when it is absolute, or when, joined to its root and
resolved (``..`` collapsed, symbolic links followed), it lands outside that root. SEN12MS-CR land
cover may live in another folder (``--land-cover``): its paths must then resolve inside that
``land_cover_root``. Links *inside* a root are fine; a link that leads out of it is refused, so a
manifest cannot make training or ``checksum=True`` read ``/etc/passwd`` or a sibling dataset.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path, PurePosixPath, PureWindowsPath

from tdpcr_lib.datasets.errors import DataIntegrityError


def check_relative(rel: str, where: str, allow_parent: bool = False) -> str:
    """Refuse an absolute manifest path or (unless ``allow_parent``) one with a ``..`` part.

    ``where`` names the manifest line (``'train.csv:3'``) in the message. Returns ``rel``.
    A lexical check, without touching the disk: run on every row when a split file is read.
    """
    if not rel:
        return rel
    if PurePosixPath(rel).is_absolute() or PureWindowsPath(rel).drive or rel.startswith("\\"):
        raise DataIntegrityError(
            f"{where}: absolute path {rel!r} refused; manifest paths are relative to the dataset root"
        )
    if not allow_parent and ".." in PurePosixPath(rel.replace("\\", "/")).parts:
        raise DataIntegrityError(
            f"{where}: path {rel!r} contains '..' and is refused; manifest paths must stay inside the dataset root"
        )
    return rel


class Containment:
    """Resolves manifest paths against a root, refusing any that escapes its allowed root(s).

    Parameters
    ----------
    root : path
        The dataset root every path is relative to.
    extra_roots : sequence of paths
        Other roots a path may resolve into (SEN12MS-CR ``land_cover_root``), only for the
        kinds of file named in ``extra_kinds``.
    """

    def __init__(
        self, root: str | Path, extra_roots: Sequence[str | Path] = (), extra_kinds: Sequence[str] = ()
    ) -> None:
        self.root = Path(root)
        self._real_root = Path(os.path.realpath(self.root))
        self._extra = [Path(os.path.realpath(Path(r).expanduser())) for r in extra_roots]
        self._extra_kinds = frozenset(extra_kinds)

    def resolve(self, rel: str, kind: str = "", source: str | Path | None = None) -> Path:
        """``root / rel`` after checking that its real location lies inside an allowed root.

        Raises
        ------
        DataIntegrityError
            ``rel`` is absolute or leads (through ``..`` or a symbolic link) out of the root,
            naming the manifest ``source`` when given.
        """
        where = f"{source}: " if source is not None else ""
        if PurePosixPath(rel).is_absolute() or PureWindowsPath(rel).drive:
            raise DataIntegrityError(
                f"{where}absolute path {rel!r} refused; manifest paths are relative to the dataset root {self.root}"
            )
        path = self.root / rel
        real = Path(os.path.realpath(path))
        allowed = [self._real_root] + (self._extra if kind in self._extra_kinds else [])
        if not any(real.is_relative_to(r) for r in allowed):
            names = " or ".join(str(r) for r in allowed)
            raise DataIntegrityError(
                f"{where}{rel!r} resolves to {real}, outside {names}; "
                "manifest paths (and links they pass through) must stay "
                "inside the dataset root"
                + (" (land cover: inside the land-cover root)" if kind in self._extra_kinds else "")
            )
        return path
