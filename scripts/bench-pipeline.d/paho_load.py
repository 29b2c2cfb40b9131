"""The Python load of scripts/bench-pipeline (--publisher python): the same messages, topics and
JSON summaries as `ehs-bench-pipeline publish|broker`, one paho process per MQTT connection, for
when the Rust load tool is not built. Costs more CPU per message than the Rust publisher; the
report shows the publisher's own CPU either way."""

import multiprocessing
import time
import threading
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

READINGS_PER_MESSAGE = 3
WINDOW = 1000


def meter_payload(seq, sent_at_ms):
    """ehs_bench::telemetry::meter_payload: three readings and the publish time as `ts`."""
    step = seq % 100
    power, voltage = 400.0 + step * 0.5, 229.0 + step * 0.02
    return (f'{{"ts":{sent_at_ms},"power_w":{power:.1f},"voltage_v":{voltage:.2f},'
            f'"current_a":{power / voltage:.3f}}}')


def client(url, client_id, receive_maximum=None):
    parsed = urlparse(url)
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    c.max_inflight_messages_set(WINDOW)
    c.max_queued_messages_set(0)
    props = None
    if receive_maximum:
        props = Properties(PacketTypes.CONNECT)
        props.ReceiveMaximum = receive_maximum
    c.connect(parsed.hostname, parsed.port or 1883, properties=props)
    return c


def publish_one(job):
    url, root, home, count, rate, devices = job
    c = client(url, f"{home}-pub")
    acked = [0]
    done = threading.Event()
    last_ack = [0]

    def on_publish(_client, _userdata, _mid, _reason, _props):
        acked[0] += 1
        if acked[0] >= count:
            last_ack[0] = int(time.time() * 1000)
            done.set()

    c.on_publish = on_publish
    c.loop_start()
    started, first = time.monotonic(), int(time.time() * 1000)
    for i in range(count):
        if rate:
            due = started + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        device, seq = i % devices, i // devices
        c.publish(f"{root}/{home}/m{device:05}/telemetry", meter_payload(seq, int(time.time() * 1000)), qos=1)
    done.wait(600)
    c.disconnect()
    c.loop_stop()
    return count if done.is_set() else acked[0], first, last_ack[0] or int(time.time() * 1000)


def publish(url, root, run, connections, messages, rate, devices=1000):
    jobs = [(url, root, f"{run}-{i}", messages // connections + (i < messages % connections),
             rate / connections if rate else 0, devices) for i in range(connections)]
    with multiprocessing.Pool(connections) as pool:
        results = pool.map(publish_one, jobs)
    published = sum(r[0] for r in results)
    first, last = min(r[1] for r in results), max(r[2] for r in results)
    seconds = max((last - first) / 1000, 1e-3)
    return {"connections": connections, "published": published, "readings": published * READINGS_PER_MESSAGE,
            "asked_rate_msgs": rate, "first_publish_ms": first, "last_ack_ms": last,
            "offered_msgs_per_s": published / seconds,
            "offered_readings_per_s": published * READINGS_PER_MESSAGE / seconds, "publisher": "python"}


def subscribe_one(job):
    url, group, client_id, receive_maximum, ready, idle_s = job
    c = client(url, client_id, receive_maximum)
    state = {"received": 0, "last": 0}

    def on_message(_client, _userdata, _message):
        state["received"] += 1
        state["last"] = int(time.time() * 1000)

    c.on_message = on_message
    c.subscribe(f"$share/{group}/bench/+/+/telemetry", qos=1)
    c.loop_start()
    time.sleep(1)
    ready.release()
    seen, quiet_since = -1, time.monotonic()
    while time.monotonic() - quiet_since < idle_s:
        if state["received"] != seen:
            seen, quiet_since = state["received"], time.monotonic()
        time.sleep(0.2)
    c.disconnect()
    c.loop_stop()
    return state["received"], state["last"]


def broker(url, run, connections, messages, subscribers, receive_maximum):
    manager = multiprocessing.Manager()
    ready = manager.Semaphore(0)
    with multiprocessing.Pool(subscribers) as pool:
        pending = pool.map_async(subscribe_one, [(url, f"{run}-share", f"{run}-sub-{i}", receive_maximum, ready, 10)
                                                 for i in range(subscribers)])
        for _ in range(subscribers):
            ready.acquire()
        out = publish(url, "bench", run, connections, messages, 0)
        results = pending.get()
    received = sum(r[0] for r in results)
    last = max(r[1] for r in results) or out["last_ack_ms"]
    seconds = max((last - out["first_publish_ms"]) / 1000, 1e-3)
    out.update(received=received, received_per_member=[r[0] for r in results], last_receive_ms=last,
               msgs_per_s=received / seconds, readings_per_s=received * READINGS_PER_MESSAGE / seconds)
    return out
