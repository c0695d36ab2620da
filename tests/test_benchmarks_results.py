"""benchmarks/_results.py, the CSV helper of the benchmark scripts: resume (rows already written are skipped), claims
(two runs of one script at once compute each row once), and the IE-HERCL scripts' rows written byte for byte as the
committed CSVs (same columns, same order, same text)."""
import importlib.util
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))
import _results  # noqa: E402


def _script(name):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_resume_reads_the_file_at_each_row(tmp_path):
    out = tmp_path / "r.csv"
    with _results.claim(out, table="T", seed=0) as todo:
        assert todo  # no file yet
        _results.append_rows(out, [dict(table="T", seed=0, ari=0.5)], ["table", "seed", "ari"])
    with _results.claim(out, table="T", seed=0) as todo:
        assert not todo  # written since: skipped
    _results.append_rows(out, [dict(table="T", seed=1, ari=0.25)], ["table", "seed", "ari"])  # by another run
    with _results.claim(out, table="T", seed=1) as todo:
        assert not todo  # read now, not at the start of this run
    with _results.claim(out, table="T", seed=2) as todo:
        assert todo
    assert out.read_text() == "table,seed,ari\nT,0,0.5\nT,1,0.25\n"


def test_a_claim_held_by_a_live_process_is_skipped_and_released_on_exit(tmp_path):
    out = tmp_path / "r.csv"
    with pytest.raises(RuntimeError):
        with _results.claim(out, method="m", seed=0) as todo:
            assert todo
            with _results.claim(out, method="m", seed=0) as again:
                assert not again  # held (by this live process)
            with _results.claim(out, method="m", seed=1) as other:
                assert other  # another row is free
            raise RuntimeError("the fit failed")
    with _results.claim(out, method="m", seed=0) as todo:
        assert todo  # released although the row failed
    assert not _results._claim_file(out, dict(method="m", seed=0)).exists()


def test_a_claim_left_by_a_dead_process_is_taken_over(tmp_path):
    out = tmp_path / "r.csv"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _results._claim_file(out, dict(method="m", seed=0)).write_text(str(dead.pid))
    with _results.claim(out, method="m", seed=0) as todo:
        assert todo


WORKER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    sys.path.insert(0, sys.argv[1])
    import _results
    out, me = Path(sys.argv[2]), sys.argv[3]
    (out.parent / f"ready_{me}").touch()
    while not (out.parent / "go").exists():
        time.sleep(0.01)
    for seed in range(6):
        with _results.claim(out, setting="s", seed=seed) as todo:
            if todo:
                time.sleep(0.15)  # the fit
                _results.append_rows(out, [dict(setting="s", seed=seed, by=me)], ["setting", "seed", "by"])
""")


def test_two_runs_at_once_write_each_row_once(tmp_path):
    out = tmp_path / "r.csv"
    runs = [subprocess.Popen([sys.executable, "-c", WORKER, str(BENCH), str(out), me]) for me in "ab"]
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"ready_{me}").exists() for me in "ab") and time.monotonic() < deadline:
        time.sleep(0.02)
    (tmp_path / "go").touch()  # both start the same list of rows at the same moment
    assert [r.wait(timeout=60) for r in runs] == [0, 0]
    rows = pd.read_csv(out)
    assert sorted(rows.seed) == list(range(6))  # every row once: none twice, none lost


@pytest.mark.parametrize("name", ["iehercl_her2_sweeps", "iehercl_datasets"])
def test_iehercl_scripts_append_the_committed_csv_byte_for_byte(name, tmp_path):
    module = _script(name)
    committed = module.OUT
    if not committed.exists():
        pytest.skip(f"{committed.name} not written yet")
    old = pd.read_csv(committed, float_precision="round_trip")
    assert list(old.columns) == module.COLUMNS
    again = tmp_path / committed.name
    for row in old.to_dict("records"):  # each row appended alone, as the script does
        _results.append_rows(again, [row], module.COLUMNS)
    assert again.read_bytes() == committed.read_bytes()


def test_iehercl_scaling_stage_columns_are_the_committed_ones():
    """fit's `seconds` and `cpu_seconds` (same stages) give iehercl_scaling.csv's per-stage columns."""
    from types import SimpleNamespace
    stages = ["inputs", "graphs", "train", "cluster"]
    res = SimpleNamespace(seconds=dict.fromkeys(stages, 2.0), cpu_seconds=dict.fromkeys(stages, 1.0))
    row = _script("iehercl_scaling")._stage_seconds(res)
    assert list(row) == [f"{k}{c}_seconds" for k in stages for c in ("", "_cpu")]
    assert row["train_seconds"] == 2.0 and row["train_cpu_seconds"] == 1.0
    header = (BENCH / "results" / "iehercl_scaling.csv").read_text().splitlines()[0].split(",")
    assert set(row) <= set(header)


def _hggep_folds():
    spec = importlib.util.spec_from_file_location("hggep_folds", BENCH / "hggep" / "folds.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # the run itself is under `if __name__ == "__main__"`
    return module


def _fold_groups(rows, keys):
    "The rows split into runs of consecutive equal `keys` (one fold each, in file order)."
    run = (rows[keys] != rows[keys].shift()).any(axis=1).cumsum()
    return [g for _, g in rows.groupby(run, sort=False)]


def test_hggep_folds_appends_the_committed_csvs_byte_for_byte(tmp_path):
    """folds.py through _results: the committed per-gene and summary files, widened to the current columns, are what
    the script appends fold by fold; the widening keeps every old cell, and the page's reading is unchanged."""
    folds = _hggep_folds()
    per_gene, summary = folds.OUT / "folds_per_gene.csv", folds.OUT / "folds_summary.csv"
    if not summary.exists():
        pytest.skip("folds_summary.csv not written yet")
    for committed, columns in ((per_gene, folds.PER_GENE_COLUMNS), (summary, folds.SUMMARY_COLUMNS)):
        header = list(pd.read_csv(committed, nrows=0).columns)
        assert header == columns[:len(header)]  # same columns, same order (newer ones only added on the right)
    wide = {}
    for committed, columns in ((per_gene, folds.PER_GENE_COLUMNS), (summary, folds.SUMMARY_COLUMNS)):
        wide[committed.name] = tmp_path / f"wide_{committed.name}"
        wide[committed.name].write_bytes(committed.read_bytes())
        folds.widen(wide[committed.name], columns)
        n_new = len(columns) - len(pd.read_csv(committed, nrows=0).columns)
        old_lines, new_lines = committed.read_text().splitlines(), wide[committed.name].read_text().splitlines()
        assert new_lines[1:] == [line + "," * n_new for line in old_lines[1:]]  # old cells unchanged
    page = pd.read_csv(wide[summary.name])  # as nbs/11_hggep.ipynb reads it
    page = page[page.config == "default (CPU profile)"].drop_duplicates(["protocol", "train_sections"])
    before = pd.read_csv(summary)
    before = before[before.config == "default (CPU profile)"].drop_duplicates(["protocol", "train_sections"])
    pd.testing.assert_frame_equal(page[before.columns], before)
    again = {name: tmp_path / name for name in ("per_gene.csv", "summary.csv")}
    for name, src in (("per_gene.csv", wide[per_gene.name]), ("summary.csv", wide[summary.name])):
        again[name].write_text(src.read_text().splitlines()[0] + "\n")  # the header only
    genes = pd.read_csv(per_gene, float_precision="round_trip")
    rows = pd.read_csv(summary, float_precision="round_trip")
    gene_folds = _fold_groups(genes, ["protocol", "fold"])
    summary_folds = _fold_groups(rows, ["protocol", "train_sections"])
    assert len(gene_folds) == len(summary_folds)
    for table, fold_rows in zip(gene_folds, summary_folds):
        folds.write_fold(again["summary.csv"], again["per_gene.csv"], table, fold_rows.to_dict("records"))
    assert again["per_gene.csv"].read_bytes() == wide[per_gene.name].read_bytes()
    assert again["summary.csv"].read_bytes() == wide[summary.name].read_bytes()


def test_hggep_folds_resume_drops_the_rows_of_an_unfinished_fold(tmp_path):
    folds = _hggep_folds()
    summary_csv, per_gene_csv = tmp_path / "s.csv", tmp_path / "g.csv"
    def table(protocol, section, genes=("A", "B")):
        return pd.DataFrame(dict(protocol=protocol, fold=0, section=section, method="hggep", gene=list(genes),
                                 pcc=[0.5, 0.25][:len(genes)]))
    done = [dict(protocol="leak_free", section="C6", mean_pcc=0.375, train_sections="B4 C2")]
    folds.write_fold(summary_csv, per_gene_csv, table("leak_free", "C6"), done)
    assert folds.fold_done(summary_csv, "leak_free", ("C6",))
    assert not folds.fold_done(summary_csv, "leak_free", ("C2",))
    assert not folds.fold_done(summary_csv, "patient", ("C6",))
    kept = per_gene_csv.read_bytes()
    _results.append_rows(per_gene_csv, table("patient", "C2"), folds.PER_GENE_COLUMNS)  # died before its summary
    assert folds.drop_unfinished(per_gene_csv, "patient", ("C2", "C3")) == 2
    assert per_gene_csv.read_bytes() == kept  # the finished fold's rows untouched
    assert folds.drop_unfinished(per_gene_csv, "patient", ("C2",)) == 0
    with pytest.raises(ValueError, match="not in the CSV"):
        folds.write_fold(summary_csv, per_gene_csv, table("patient", "C2").assign(new=1), done)
    assert per_gene_csv.read_bytes() == kept  # nothing written
    header = summary_csv.read_text().splitlines()[0]
    assert header == ",".join(folds.SUMMARY_COLUMNS)
