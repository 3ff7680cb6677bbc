"""Regenerate quic_aioquic_*.bin: an aioquic client (pip install aioquic; 1.7.2 was used)
sends its first flight for SNI h3.example.com, ALPN h3 through a real UDP socket to a
recorder socket on 127.0.0.1; the recorded datagrams are stored as the probe corpus format
(u16 big-endian length, then the bytes, per datagram)."""
import pathlib, socket, struct, time
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.packet import QuicProtocolVersion

HERE = pathlib.Path(__file__).parent

def capture(name, **options):
    recorder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    recorder.bind(("127.0.0.1", 0))
    recorder.settimeout(1.0)
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.bind(("127.0.0.1", 0))
    config = QuicConfiguration(is_client=True, alpn_protocols=["h3"],
                               server_name="h3.example.com", **options)
    conn = QuicConnection(configuration=config)
    now = time.time()
    conn.connect(recorder.getsockname(), now=now)
    sent = 0
    for data, addr in conn.datagrams_to_send(now=now):
        client.sendto(data, addr)
        sent += 1
    got = [recorder.recvfrom(65535)[0] for _ in range(sent)]
    (HERE / f"{name}.bin").write_bytes(b"".join(struct.pack(">H", len(d)) + d for d in got))
    print(name, [len(d) for d in got])

capture("quic_aioquic_h3")
capture("quic_aioquic_v2_h3", original_version=QuicProtocolVersion.VERSION_2)
# A dummy 1200-byte extension: the ClientHello spans two datagrams, as with ML-KEM shares.
capture("quic_aioquic_pq_h3", quantum_readiness_test=True)
