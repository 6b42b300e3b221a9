"""Atomic writes: whole files only, with the permissions a normal file gets under the umask."""

import stat
import subprocess
import sys

import pytest

from cxrsal.io import atomic_path, atomic_write_text


@pytest.mark.parametrize("umask, mode", [(0o002, 0o664), (0o022, 0o644), (0o077, 0o600)])
def test_atomic_files_get_the_umask_mode(tmp_path, umask, mode):
    # a new process, so the umask of the test runner is untouched; open() there is the reference
    code = (f"import os; os.umask({umask}); from cxrsal.io import atomic_write_text; "
            f"atomic_write_text({str(tmp_path / 'a.txt')!r}, 'x'); open({str(tmp_path / 'b.txt')!r}, 'w').close()")
    subprocess.run([sys.executable, "-c", code], check=True)
    got = stat.S_IMODE((tmp_path / "a.txt").stat().st_mode)
    assert got == mode == stat.S_IMODE((tmp_path / "b.txt").stat().st_mode)


def test_a_failed_write_leaves_the_previous_file(tmp_path):
    atomic_write_text(tmp_path / "t.csv", "old\n")
    with pytest.raises(OSError):
        with atomic_path(tmp_path / "t.csv") as tmp:
            tmp.write_text("half")
            raise OSError(28, "No space left on device")
    assert (tmp_path / "t.csv").read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"]
