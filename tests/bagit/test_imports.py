"""What importing the bag code loads: its memory is what every bag writer and validator pays."""

from __future__ import annotations

import subprocess
import sys


def loaded_by(statement: str) -> set[str]:
    code = f"import sys\n{statement}\nprint(' '.join(sys.modules))"
    return set(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.split())


def test_the_bag_code_loads_neither_settings_nor_adapters_nor_archive_readers() -> None:
    loaded = loaded_by("import preservation.bagit")
    heavy = {"pydantic", "yaml", "sqlalchemy", "storage_adapters", "tarfile", "zipfile"}
    assert not {m for m in loaded if m.split(".")[0] in heavy}
    assert not {"preservation.settings", "preservation.bagit.archives"} & loaded


def test_archive_readers_load_when_an_archive_is_opened(tmp_path) -> None:
    archive = str(tmp_path / "delivery")  # no suffix: recognised by its content
    loaded = loaded_by(
        "import io, tarfile\n"
        f"with tarfile.open({archive!r}, 'w') as t:\n"
        "    t.addfile(tarfile.TarInfo('a.txt'), io.BytesIO(b''))\n"
        "from preservation.bagit import open_delivery\n"
        f"assert open_delivery({archive!r}).kind == 'tar'"
    )
    assert "preservation.bagit.archives" in loaded
