#!/usr/bin/env python3
"""Turns the HiveMQ config.xml that `ehs render` produced for the operator-managed HiveMQ
Platform into one HiveMQ Community Edition runs on 127.0.0.1, for scripts/local-stack.

Usage: hivemq-config.py SOURCE PORT OUTPUT

SOURCE is a config.xml or the rendered ConfigMap holding one (data key config.xml). Only
what a single local CE broker cannot take is changed, so every MQTT setting (queue limits,
receive maximum, ...) reaches the broker as rendered:
- the listeners become one plain TCP listener on 127.0.0.1:PORT (the rendered ones bind
  0.0.0.0 and the TLS one needs the cluster's keystore);
- top-level sections CE does not know (cluster, health-api, control-center, ...: HiveMQ
  Platform only) are dropped; the CE schema would reject them;
- anonymous usage statistics are switched off (this machine reaches no such service).
Each change is printed on stderr.
"""
import sys
import xml.etree.ElementTree as ET

# Top-level elements of <hivemq> in the config.xsd of hivemq-community-edition-embedded.
CE_SECTIONS = {"listeners", "mqtt", "restrictions", "security", "persistence",
               "anonymous-usage-statistics"}


def load(source):
    with open(source, encoding="utf-8") as f:
        text = f.read()
    if source.endswith((".yaml", ".yml")):
        import yaml
        try:
            text = yaml.safe_load(text)["data"]["config.xml"]
        except (TypeError, KeyError) as e:
            sys.exit(f"hivemq-config: {source}: no data.config.xml in this ConfigMap ({e})")
    return ET.fromstring(text)


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    source, port, output = sys.argv[1:]
    root = load(source)
    if root.tag != "hivemq":
        sys.exit(f"hivemq-config: {source}: root element is <{root.tag}>, expected <hivemq>")
    for child in list(root):
        if child.tag not in CE_SECTIONS:
            print(f"hivemq-config: dropped <{child.tag}> (not in HiveMQ CE)", file=sys.stderr)
            root.remove(child)
    listeners = root.find("listeners")
    if listeners is None:
        listeners = ET.Element("listeners")
        root.insert(0, listeners)
    for listener in list(listeners):
        name = listener.findtext("name") or listener.tag
        print(f"hivemq-config: replaced listener {name} ({listener.tag} on "
              f"{listener.findtext('bind-address')}:{listener.findtext('port')})", file=sys.stderr)
        listeners.remove(listener)
    tcp = ET.SubElement(listeners, "tcp-listener")
    ET.SubElement(tcp, "port").text = port
    ET.SubElement(tcp, "bind-address").text = "127.0.0.1"
    ET.SubElement(tcp, "name").text = "local-stack"
    stats = root.find("anonymous-usage-statistics")
    if stats is None:
        stats = ET.SubElement(root, "anonymous-usage-statistics")
    stats.clear()
    ET.SubElement(stats, "enabled").text = "false"
    ET.indent(root)
    ET.ElementTree(root).write(output, encoding="unicode", xml_declaration=True)


if __name__ == "__main__":
    main()
