"""Atomic writes: whole files only, with the permissions a normal file gets under the umask."""

import stat
import subprocess
import sys

import pytest

from cxrsal.files import atomic_path, atomic_write_text


@pytest.mark.parametrize("umask, mode", [(0o002, 0o664), (0o022, 0o644), (0o077, 0o600)])
def test_atomic_files_get_the_umask_mode(tmp_path, umask, mode):
    # a new process, so the umask of the test runner is untouched; open() there is the reference
    code = (f"import os; os.umask({umask}); from cxrsal.files import atomic_write_text; "
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


def test_cleanup_removes_only_the_files_of_dead_processes(tmp_path):
    """Shards of one job write into one folder: a rerun removes what killed runs left, never the
    temporary file of a live process, here or on another host (unless abandoned for a day)."""
    import os
    import time

    from cxrsal.files import STALE_AFTER_S, _owner_tag, remove_stale_tmp

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    host = _owner_tag().split("@")[1]
    sub = tmp_path / "maps" / "grad"
    sub.mkdir(parents=True)
    files = {
        "mine": sub / f".tmp-a.npz.{_owner_tag()}x1.npz",                        # this live process
        "live": sub / f".tmp-b.npz.@{host}@{os.getppid()}@x2.npz",                # the live test runner
        "dead": sub / f".tmp-c.npz.@{host}@{dead.stdout.strip()}@x3.npz",         # a finished process
        "untagged": tmp_path / ".tmp-d.csv.x4.csv",                               # an older cxrsal's
        "remote": sub / ".tmp-e.npz.@otherhost@1@x5.npz",                         # another host, recent
        "abandoned": sub / ".tmp-f.npz.@otherhost@1@x6.npz",                      # another host, old
        "result": sub / "g.npz",
    }
    for p in files.values():
        p.write_text("x")
    old = time.time() - STALE_AFTER_S - 60
    os.utime(files["abandoned"], (old, old))
    remove_stale_tmp(tmp_path)                        # not recursive: only the folder's own
    assert not files["untagged"].exists() and files["dead"].exists()
    remove_stale_tmp(tmp_path, recursive=True)
    assert {k for k, p in files.items() if p.exists()} == {"mine", "live", "remote", "result"}


def test_injected_full_disk_keeps_the_previous_file(tmp_path, monkeypatch):
    from cxrsal.files import FAIL_AT_ENV

    atomic_write_text(tmp_path / "t.json", "old")
    monkeypatch.setenv(FAIL_AT_ENV, "1:written:t.json")
    with pytest.raises(OSError) as e:
        atomic_write_text(tmp_path / "t.json", "new")
    assert e.value.errno == 28 and e.value.filename == str(tmp_path / "t.json")
    assert (tmp_path / "t.json").read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["t.json"]
