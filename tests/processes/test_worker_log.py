from streams.processes.worker_log import worker_ready

ASSIGNED = (
    "[2026-11-29 08:00:00,001] [1] [INFO] Setting newly assigned partitions {...} for group g"
)
READY = "[2026-11-29 08:00:01,002] [1] [INFO] [^Worker]: Ready"


def test_ready_needs_both_the_assignment_and_the_ready_line() -> None:
    assert not worker_ready("")
    assert not worker_ready(ASSIGNED)
    assert not worker_ready(READY)
    assert worker_ready(f"{ASSIGNED}\n{READY}\n")


def test_nested_worker_names_and_json_lines_match() -> None:
    nested = "[^--Worker]: Ready"
    json_line = '{"level":"info","message":"[^Worker]: Ready"}'
    assert worker_ready(f"{ASSIGNED}\n{nested}")
    assert worker_ready(f"{ASSIGNED}\n{json_line}")
    assert not worker_ready(f"{ASSIGNED}\n[^---Recovery]: Worker ready")
