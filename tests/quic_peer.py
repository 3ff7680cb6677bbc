"""A QUIC peer for sluice's interop tests (aioquic): a tagged echo server, or a client that
completes a full handshake with a given SNI, sends one stream and prints the answer.

  quic_peer.py server PORT CERT KEY NAME   -> prints "listening" when ready
  quic_peer.py client PORT SNI             -> prints the server's answer, exit 0 on success
"""
import asyncio
import ssl
import sys

from aioquic.asyncio import QuicConnectionProtocol, connect, serve
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import StreamDataReceived

ALPN = ["sluice-test"]


class Tagged(QuicConnectionProtocol):
    name = b"?"

    def quic_event_received(self, event):
        if isinstance(event, StreamDataReceived) and event.end_stream:
            self._quic.send_stream_data(event.stream_id, self.name + b" " + event.data, end_stream=True)
            self.transmit()


async def server(port, cert, key, name):
    config = QuicConfiguration(is_client=False, alpn_protocols=ALPN)
    config.load_cert_chain(cert, key)
    Tagged.name = name.encode()
    await serve("127.0.0.1", port, configuration=config, create_protocol=Tagged)
    print("listening", flush=True)
    await asyncio.Event().wait()


async def client(port, sni):
    config = QuicConfiguration(is_client=True, alpn_protocols=ALPN, server_name=sni)
    config.verify_mode = ssl.CERT_NONE
    async with connect("127.0.0.1", port, configuration=config, wait_connected=True) as conn:
        reader, writer = await conn.create_stream()
        writer.write(b"ping")
        writer.write_eof()
        answer = await asyncio.wait_for(reader.read(), 10)
        print(answer.decode(), flush=True)


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "server":
        asyncio.run(server(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]))
    else:
        asyncio.run(asyncio.wait_for(client(int(sys.argv[2]), sys.argv[3]), 20))
