import socket

from streams.processes.ports import accepts, free_port, free_ports


def test_free_ports_are_distinct_and_unused() -> None:
    ports = free_ports(5)
    assert len(set(ports)) == 5
    assert not any(accepts("127.0.0.1", port) for port in ports)


def test_accepts_sees_a_listener_and_its_absence() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert accepts("127.0.0.1", port)
    assert not accepts("127.0.0.1", port)
    assert not accepts("127.0.0.1", free_port())
