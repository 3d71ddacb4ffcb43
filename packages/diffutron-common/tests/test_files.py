"""The file policies every command inherits: ownership, atomic outputs, inputs never outputs."""

import json
import os
import subprocess
import sys

import pytest

from diffutron_common import (
    MARKER,
    PathError,
    atomic_path,
    atomic_write,
    building_folder,
    check_output_file,
    check_output_folder,
    check_replaceable,
    claim_folder,
    is_temp,
    owned,
    read_marker,
    remove_owned,
    remove_stale_temps,
    replace_path,
    temp_sibling,
    write_text,
)


def snapshot(root):
    """Every file under ``root`` with its bytes: what 'left untouched' means."""
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def users_folder(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "thesis.tex").write_text("years of work", encoding="utf-8")
    return folder


def test_a_folder_without_the_marker_is_never_replaced_written_into_or_removed(tmp_path):
    mine = users_folder(tmp_path)
    before = snapshot(tmp_path)
    with pytest.raises(PathError, match=r"holds files Diffutron did not make \(no \.diffutron"):
        claim_folder(mine, "run", option="--output-dir")
    with pytest.raises(PathError, match="did not make"), building_folder(mine, "model"):
        raise AssertionError("never reached")
    with pytest.raises(PathError, match="did not make"):
        remove_owned(mine, "run", option="--output-dir")
    staged = tmp_path / "staged"
    staged.mkdir()
    with pytest.raises(PathError, match="did not make"):
        replace_path(staged, mine, "model", option="--output-dir")
    assert snapshot(tmp_path) == before


def test_a_folder_of_another_kind_is_refused_by_name(tmp_path):
    folder = claim_folder(tmp_path / "bench", "bench", option="--output-dir")
    assert read_marker(folder) == {"kind": "bench"}
    with pytest.raises(PathError, match="is a Diffutron bench folder, not a run folder"):
        check_replaceable(folder, "run", option="--output-dir")
    assert owned(folder) and owned(folder, "bench") and not owned(folder, ["run", "model"])


def test_a_file_where_a_folder_should_be_is_refused(tmp_path):
    path = tmp_path / "file"
    path.write_text("x", encoding="utf-8")
    with pytest.raises(PathError, match="is a file, not a folder"):
        claim_folder(path, "run", option="--output-dir")
    with pytest.raises(PathError, match="a file is in the way"):
        claim_folder(path / "inner", "run", option="--output-dir")


@pytest.mark.parametrize("marker", ["", "[]", '{"kind": 3}', "not json"])
def test_a_damaged_or_foreign_marker_does_not_make_a_folder_ours(tmp_path, marker):
    folder = tmp_path / "x"
    folder.mkdir()
    (folder / MARKER).write_text(marker, encoding="utf-8")
    assert read_marker(folder) is None
    with pytest.raises(PathError, match="did not make"):
        check_replaceable(folder, "run", option="--output-dir")


def test_building_folder_replaces_its_own_kind_only_when_the_build_succeeds(tmp_path):
    final = tmp_path / "model"
    with building_folder(final, "model", step=3) as tmp:
        assert tmp.parent == tmp_path and is_temp(tmp)
        (tmp / "weights").write_text("v1", encoding="utf-8")
    assert (final / "weights").read_text(encoding="utf-8") == "v1"
    assert read_marker(final) == {"kind": "model", "step": 3}
    with pytest.raises(RuntimeError), building_folder(final, "model") as tmp:
        (tmp / "weights").write_text("half", encoding="utf-8")
        raise RuntimeError("killed half way")
    assert (final / "weights").read_text(encoding="utf-8") == "v1"
    with building_folder(final, "model") as tmp:
        (tmp / "weights").write_text("v2", encoding="utf-8")
    assert (final / "weights").read_text(encoding="utf-8") == "v2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temporary left
    with (
        pytest.raises(PathError, match="pass --overwrite"),
        building_folder(final, "model", overwrite=False),
    ):
        raise AssertionError("never reached")


def test_atomic_write_leaves_the_old_file_whole_when_the_writer_fails(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text("old\n", encoding="utf-8")
    with pytest.raises(ValueError), atomic_write(path) as handle:
        handle.write("new, half")
        assert path.read_text(encoding="utf-8") == "old\n"  # not touched while writing
        raise ValueError("the work failed")
    assert path.read_text(encoding="utf-8") == "old\n"
    with atomic_write(path) as handle:
        handle.write("new\n")
    assert path.read_text(encoding="utf-8") == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]


def test_atomic_path_keeps_the_suffix_for_writers_that_choose_a_format_by_it(tmp_path):
    with atomic_path(tmp_path / "chart.png") as tmp:
        assert tmp.suffix == ".png" and tmp.name.startswith(".chart")
        tmp.write_bytes(b"png")
    assert (tmp_path / "chart.png").read_bytes() == b"png"
    with pytest.raises(FileNotFoundError), atomic_path(tmp_path / "nothing.json"):
        pass  # a writer that wrote nothing does not replace anything
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chart.png"]


def test_check_output_file_refuses_inputs_folders_and_impossible_places(tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("{}\n", encoding="utf-8")
    os.symlink(prompts, tmp_path / "link.jsonl")
    for same in (prompts, tmp_path / "link.jsonl", tmp_path / "." / "prompts.jsonl"):
        with pytest.raises(PathError, match="is also an input"):
            check_output_file(same, inputs=[prompts])
    with pytest.raises(PathError, match="is a folder; give a file path"):
        check_output_file(tmp_path)
    with pytest.raises(PathError, match="is a file, not a folder"):
        check_output_file(prompts / "out.jsonl")
    assert check_output_file(tmp_path / "new" / "deeper" / "out.jsonl") is not None
    assert not (tmp_path / "new").exists()  # checking creates nothing


def test_check_output_folder_refuses_a_folder_holding_an_input(tmp_path):
    data = tmp_path / "data.txt"
    data.write_text("x", encoding="utf-8")
    with pytest.raises(PathError, match="did not make"):
        check_output_folder(tmp_path, "bench", inputs=[data])
    with pytest.raises(PathError, match="holds an input"):
        check_output_folder(tmp_path / "new", "bench", inputs=[tmp_path / "new" / "x.jsonl"])


def test_stale_temporaries_of_dead_processes_are_cleared_and_live_ones_kept(tmp_path):
    from diffutron_common.temps import _host

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    host, pid = _host(), int(dead.stdout)
    (tmp_path / f".model.diffutron-tmp-{host}-{pid}-abcd1234").mkdir()  # a half-built model
    (tmp_path / f".out.diffutron-tmp-{host}-{pid}-00ff00ff.jsonl").write_text("half", "utf-8")
    # killed between moving the old run aside and the new one in: the old one comes back
    old = tmp_path / f".run.diffutron-old-{host}-{pid}-0badf00d"
    old.mkdir()
    (old / "weights").write_text("previous", encoding="utf-8")
    mine = temp_sibling(tmp_path / "mine.json")  # this live process's
    mine.write_text("in progress", encoding="utf-8")
    elsewhere = tmp_path / f".x.diffutron-tmp-ffffff-{pid}-12345678"  # another host's
    elsewhere.write_text("theirs", encoding="utf-8")
    (tmp_path / ".hidden-but-not-ours").write_text("keep", encoding="utf-8")
    (tmp_path / ".notes.diffutron-tmp-x").write_text("not our pattern", encoding="utf-8")
    assert len(remove_stale_temps(tmp_path, name="model")) == 1  # only that output's
    assert len(remove_stale_temps(tmp_path)) == 2
    assert (tmp_path / "run" / "weights").read_text(encoding="utf-8") == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [mine.name, elsewhere.name, ".hidden-but-not-ours", ".notes.diffutron-tmp-x", "run"]
    )


def test_write_text_is_atomic_and_marks_nothing(tmp_path):
    path = write_text(tmp_path / "a" / "b.json", json.dumps({"x": 1}))
    assert json.loads(path.read_text(encoding="utf-8")) == {"x": 1}
    assert read_marker(tmp_path / "a") is None


def test_a_folder_that_cannot_be_written_is_refused_before_any_work(tmp_path, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    real = os.access
    monkeypatch.setattr(
        os, "access", lambda p, mode: False if os.fspath(p) == str(locked) else real(p, mode)
    )
    with pytest.raises(PathError, match="locked is not writable"):
        check_output_file(locked / "out.jsonl")
    with pytest.raises(PathError, match="locked is not writable"):
        check_output_folder(locked / "bench", "bench")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into a read-only folder")
def test_a_read_only_folder_is_refused_for_real(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    with pytest.raises(PathError, match="is not writable"):
        check_output_file(locked / "out.jsonl")
    with pytest.raises(PathError, match="cannot write"), atomic_write(locked / "out.jsonl"):
        pass


def test_the_current_folder_is_never_replaced_and_temporaries_stay_beside_it(tmp_path, monkeypatch):
    out = claim_folder(tmp_path / "data", "cpt-data", option="--output-dir")
    (out / "rows").write_text("old", encoding="utf-8")
    monkeypatch.chdir(out)
    with (
        pytest.raises(PathError, match="is the current folder or holds it"),
        building_folder(".", "cpt-data"),
    ):
        raise AssertionError("never reached")
    monkeypatch.chdir(tmp_path)
    assert temp_sibling(".").parent == tmp_path.parent  # beside it, never inside
    assert (out / "rows").read_text(encoding="utf-8") == "old"


def test_a_symlinked_output_is_written_through_to_its_target_and_stays_a_link(tmp_path):
    target = tmp_path / "data" / "out.txt"
    target.parent.mkdir()
    target.write_text("old", encoding="utf-8")
    (tmp_path / "out.txt").symlink_to(target)
    write_text(tmp_path / "out.txt", "new")
    assert (tmp_path / "out.txt").is_symlink()
    assert target.read_text(encoding="utf-8") == "new"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.txt"]


def test_a_fifo_output_is_written_into_and_never_replaced(tmp_path):
    import stat
    import threading

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    write_text(fifo, "through the pipe")
    reader.join(timeout=30)
    assert got == [b"through the pipe"]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert check_output_file(fifo) == fifo


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full on this system")
def test_a_full_device_is_a_one_line_path_error():
    with pytest.raises(PathError, match="cannot write output /dev/full: No space left"):
        write_text("/dev/full", "x")
