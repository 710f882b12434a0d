"""A folder or a zip archive seen the same way: relative file names and their text."""

from __future__ import annotations

import os
import pathlib
import zipfile

from jaxfp.data.types import DataFormatError


class FileTree:
    """Read-only view of a directory, a zip archive or a single file."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = pathlib.Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"{self.path}: no such file or directory")
        self._zip: zipfile.ZipFile | None = None
        if self.path.is_file() and zipfile.is_zipfile(self.path):
            try:
                self._zip = zipfile.ZipFile(self.path)
            except zipfile.BadZipFile as err:
                raise DataFormatError(
                    f"{self.path}: expected a readable zip archive ({err})"
                ) from None
            self._names = sorted(n for n in self._zip.namelist() if not n.endswith("/"))
        elif self.path.is_dir():
            self._names = sorted(
                p.relative_to(self.path).as_posix() for p in self.path.rglob("*") if p.is_file()
            )
        else:
            self._names = [self.path.name]

    def names(self) -> list[str]:
        return list(self._names)

    def describe(self, name: str) -> str:
        """How an error message refers to member `name`."""
        if self._zip is not None:
            return f"{self.path}:{name}"
        return str(self.path / name) if self.path.is_dir() else str(self.path)

    def read_text(self, name: str) -> str:
        try:
            if self._zip is not None:
                data = self._zip.read(name)
            elif self.path.is_dir():
                data = (self.path / name).read_bytes()
            else:
                data = self.path.read_bytes()
        except (zipfile.BadZipFile, OSError) as err:
            raise DataFormatError(f"{self.describe(name)}: could not be read ({err})") from None
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError:
            return data.decode("latin-1")
