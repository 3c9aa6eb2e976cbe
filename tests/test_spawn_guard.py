"""A script that starts merkit's worker processes without ``if __name__ == "__main__":`` gets one
clear error naming the line and the fix, not the pool's tracebacks; a guarded one runs."""

import subprocess
import sys
import textwrap

import pytest


def _run(tmp_path, body: str) -> subprocess.CompletedProcess:
    script = tmp_path / "exp.py"
    script.write_text(textwrap.dedent(body))
    return subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300)


def test_unguarded_evaluate_with_jobs_names_the_line_and_the_guard(small_casme2, tmp_path):
    done = _run(
        tmp_path,
        f"""\
        import merkit.datasets as mds
        from merkit.evaluation import evaluate

        data = mds.load("casme2", root={str(small_casme2.root)!r}, labels="seed4")
        result = evaluate(data, "lbptop_svm", out="run", protocol="loso", jobs=2)
        """,
    )
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("merkit.errors.ConfigError: ") and "exp.py, line 5: merkit runs jobs=2" in last
    assert 'if __name__ == "__main__":' in last and "jobs=1" in last
    assert "BrokenProcessPool" not in done.stderr and "bootstrapping" not in done.stderr
    assert not (tmp_path / "run" / "metrics.json").exists()


@pytest.mark.parametrize(
    "guard", ['if __name__ == "__main__":\n    main()\n', "if '__main__' == __name__:\n    main()\n"]
)
def test_guarded_script_spawns_its_workers(tmp_path, guard):
    done = _run(
        tmp_path,
        textwrap.dedent("""\
        from merkit.synthetic import SynthConfig, write_casme2


        def main():
            truth = write_casme2("data", SynthConfig(n_subjects=2, clips_per_subject=(1, 1), seed=3), jobs=2)
            print(len(truth.clips))


        """)
        + guard,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "2"


def test_unguarded_synth_with_jobs_is_refused_too(tmp_path):
    done = _run(
        tmp_path,
        """\
        from merkit.synthetic import SynthConfig, write_casme2

        write_casme2("data", SynthConfig(n_subjects=2, clips_per_subject=(1, 1)),
                     jobs=2)
        """,
    )
    assert done.returncode == 1
    assert "exp.py, line 3: merkit runs jobs=2" in done.stderr and "BrokenProcessPool" not in done.stderr
