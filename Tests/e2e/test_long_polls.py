# SPDX-License-Identifier: Apache-2.0
"""Long polling at scale: a thousand parked polls cost nothing until one publish answers them all."""
import asyncio
import json
import urllib.request

POLLS = 1000


async def http_get(port, path):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    body = await reader.readexactly(length)
    writer.close()
    return status, json.loads(body)


def health(server):
    with urllib.request.urlopen(f"{server.http}/healthz", timeout=2) as response:
        return json.load(response)


async def test_one_publish_answers_a_thousand_waiting_long_polls(squall):
    server = squall("--log-level", "error")
    status, start = await http_get(server.port, "/channels/crowd/messages?wait=0")
    assert status == 200
    position = f"{start['epoch']}:{start['offset']}"

    polls = [
        asyncio.create_task(http_get(server.port, f"/channels/crowd/messages?since={position}&wait=20"))
        for _ in range(POLLS)
    ]
    for _ in range(500):
        if health(server)["waiting_polls"] == POLLS:
            break
        await asyncio.sleep(0.02)
    assert health(server)["waiting_polls"] == POLLS, "every poll is parked, none answered yet"
    assert not any(poll.done() for poll in polls)

    request = urllib.request.Request(f"{server.http}/channels/crowd/messages", data=b"everyone", method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 201

    answers = await asyncio.wait_for(asyncio.gather(*polls), 15)
    assert all(status == 200 for status, _ in answers)
    wrong = [body for _, body in answers if [m["data"] for m in body["messages"]] != ["everyone"]]
    assert not wrong, f"{len(wrong)} polls got {wrong[:2]}"
    assert all(body["offset"] == 1 for _, body in answers)
    assert health(server)["waiting_polls"] == 0
