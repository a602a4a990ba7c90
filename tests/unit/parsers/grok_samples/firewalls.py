# ruff: noqa: E501  (log lines are kept whole: they are the test data)
"""Firewalls: NetScreen, Cisco ASA (message text after the %ASA tag), Shorewall, SuSEfirewall2, iptables."""

from __future__ import annotations

from typing import Any

NS = (
    "Jan  2 03:04:05 10.0.0.254 ns5gt: NetScreen device_id=ns5gt  [Root]system-notification-00257(traffic): "
    'start_time="2024-01-02 03:04:04" duration=1 policy_id=2 service=dns proto=17 src zone=Trust dst zone=Untrust '
    "action=Permit sent=74 rcvd=90 src=10.0.0.5 dst=8.8.8.8 src_port=53211 dst_port=53 src-xlated ip=203.0.113.7 "
    "port=1024 dst-xlated ip=8.8.8.8 port=53 session_id=1234 reason=Close - AGE OUT"
)
TAGGED = "<166>Jan 02 2024 03:04:05 asa-1 : %ASA-6-302013: Built outbound TCP connection"
ASA = {
    "CISCOFW104001": "(Primary) Switching to ACTIVE - HELLO not heard from mate.",
    "CISCOFW104002": "(Secondary) Switching to STANDBY - Other unit wants me Standby",
    "CISCOFW104003": "(Primary) Switching to FAILED.",
    "CISCOFW104004": "(Secondary) Switching to OK.",
    "CISCOFW105003": "(Primary) Monitoring on interface inside waiting",
    "CISCOFW105004": "(Primary) Monitoring on interface inside normal",
    "CISCOFW105005": "(Secondary) Lost Failover communications with mate on interface failover",
    "CISCOFW105008": "(Primary) Testing interface outside",
    "CISCOFW105009": "(Primary) Testing on interface outside Passed",
    "CISCOFW106001": "Inbound TCP connection denied from 198.51.100.7/44321 to 10.0.0.5/22 flags SYN  on interface outside",
    "CISCOFW106006_106007_106010": "Deny inbound UDP from 198.51.100.7/53 to 10.0.0.5/1029 on interface outside",
    "CISCOFW106014": "Deny inbound icmp src outside:198.51.100.7 dst inside:10.0.0.5 (type 8, code 0)",
    "CISCOFW106015": "Deny TCP (no connection) from 10.0.0.5/80 to 198.51.100.7/51234 flags RST  on interface inside",
    "CISCOFW106021": "Deny TCP reverse path check from 10.9.9.9 to 10.0.0.5 on interface outside",
    "CISCOFW106023": 'Deny tcp src outside:198.51.100.7/44321 dst inside:10.0.0.5/3389 by access-group "outside_in" [0x0, 0x0]',
    "CISCOFW106100_2_3": "access-list vpn_filter denied tcp for user 'jdoe' outside/198.51.100.7(44321) -> inside/10.0.0.5(445) hit-cnt 1 first hit [0x9d58a5ec, 0x0]",
    "CISCOFW106100": "access-list outside_in permitted tcp outside/198.51.100.7(44321) -> inside/10.0.0.5(443) hit-cnt 3 300-second interval [0x5cde2c6a, 0x0]",
    "CISCOFW304001": "10.0.0.5(jdoe) Accessed URL 93.184.216.34:http://www.example.com/index.html",
    "CISCOFW110002": "Failed to locate egress interface for TCP from inside:10.0.0.5/51234 to 192.0.2.99/443",
    "CISCOFW302010": "42 in use, 1337 most used",
    "CISCOFW302013_302014_302015_302016": "Built outbound TCP connection 123456 for outside:93.184.216.34/443 (93.184.216.34/443) to inside:10.0.0.5/51234 (203.0.113.7/51234)",
    "CISCOFW302020_302021": "Built inbound ICMP connection for faddr 198.51.100.7/1 gaddr 203.0.113.7/0 laddr 10.0.0.5/0",
    "CISCOFW305011": "Built dynamic TCP translation from inside:10.0.0.5/51234 to outside:203.0.113.7/51234",
    "CISCOFW313001_313004_313008": "Denied ICMP type=8, code=0 from 198.51.100.7 on interface outside",
    "CISCOFW313005": "No matching connection for ICMP error message: icmp src outside:198.51.100.7 dst inside:10.0.0.5 (type 3, code 3) on outside interface.  Original IP payload: udp src 10.0.0.5/53 dst 198.51.100.7/41234",
    "CISCOFW321001": "Resource 'conns' limit of 10000 reached for system",
    "CISCOFW402117": "IPSEC: Received a non-IPSec packet (protocol= ICMP) from 198.51.100.7 to 203.0.113.7",
    "CISCOFW402119": "IPSEC: Received an ESP packet (SPI= 0x1A2B3C4D, sequence number= 0x5) from 198.51.100.7 (user= 198.51.100.7) to 203.0.113.7 that failed anti-replay checking",
    "CISCOFW419001": "Dropping TCP packet from outside:198.51.100.7/44321 to inside:10.0.0.5/80, reason: MSS exceeded, MSS 1380, data 1460",
    "CISCOFW419002": "Duplicate TCP SYN from outside:198.51.100.7/44321 to inside:10.0.0.5/80 with different initial sequence number",
    "CISCOFW500004": "Invalid transport field for protocol=TCP, from 198.51.100.7/0 to 10.0.0.5/80",
    "CISCOFW602303_602304": "IPSEC: An outbound LAN-to-LAN SA (SPI= 0x1A2B3C4D) between 203.0.113.7 and 198.51.100.7 (user= 198.51.100.7) has been created",
    "CISCOFW710001_710002_710003_710005_710006": "TCP request discarded from 198.51.100.7/44321 to outside:203.0.113.7/443",
    "CISCOFW713172": "Group = 198.51.100.7, IP = 198.51.100.7, Automatic NAT Detection Status:     Remote end is NOT behind a NAT device     This   end   is behind a NAT device",
    "CISCOFW733100": "[ Scanning] drop rate-1 exceeded. Current burst rate is 10 per second, max configured rate is 10; Current average rate is 6 per second, max configured rate is 5; Cumulative total count is 3862",
}
SHOREWALL = (
    "Jan  2 03:04:05 fw kernel: [12345.678] Shorewall:net2fw:DROP:IN=eth0 OUT= MAC=00:1a:2b:3c:4d:5e:00:0c:29:aa:bb:cc:08:00 "
    "SRC=198.51.100.7 DST=203.0.113.7 LEN=60 TOS=0x00 PREC=0x00 TTL=52 ID=54321 DF PROTO=TCP SPT=44321 DPT=22 "
    "WINDOW=29200 RES=0x00 SYN URGP=0"
)
SFW2 = (
    "Jan  2 03:04:05 gw kernel: [12345.678] SFW2-INext-DROP-DEFLT IN=eth0 OUT= MAC=00:1a:2b:3c:4d:5e:00:0c:29:aa:bb:cc:08:00 "
    "SRC=198.51.100.7 DST=203.0.113.7 LEN=60 TOS=0x00 PREC=0x00 TTL=52 ID=54321 DF PROTO=TCP SPT=44321 DPT=22 "
    "WINDOW=29200 RES=0x00 SYN URGP=0 OPT (020405B4)"
)
IPT = SHOREWALL[SHOREWALL.index("IN=eth0") :]
IPT6 = (
    "IN=eth0 OUT= MAC=00:1a:2b:3c:4d:5e:00:0c:29:aa:bb:cc:86:dd SRC=2001:db8::7 DST=2001:db8::1 LEN=80 TC=0 "
    "HOPLIMIT=57 FLOWLBL=12345 PROTO=TCP SPT=44321 DPT=22 WINDOW=28800 RES=0x00 SYN URGP=0"
)

# Where doubling the first space still matches (the format allows runs of blanks there).
NEAR_ASA = {
    "CISCOFW713172": "Group = x, IP = y",
    "CISCOFW733100": ASA["CISCOFW733100"].replace(" drop ", " dropped "),
}

SAMPLES: dict[str, tuple[str, str, str]] = {
    name: (line, line, NEAR_ASA.get(name, line.replace(" ", "  ", 1))) for name, line in ASA.items()
}
SAMPLES.update({
    "NETSCREENSESSIONLOG": (NS, NS, NS.replace("NetScreen device_id", "Netscreen device")),
    "CISCO_TAGGED_SYSLOG": (TAGGED, TAGGED[: TAGGED.index(" Built")], "<166>Jan 02 2024 03:04:05 asa-1 : ASA-6-302013:"),
    "CISCOTIMESTAMP": ("Jan 02 2024 03:04:05", "Jan 02 2024 03:04:05", "2024-01-02 03:04:05"),
    "CISCOTAG": ("ASA-6-302013", "ASA-6-302013", "ASA-x-302013"),
    "CISCO_ACTION": ("Teardown", "Teardown", "Torndown"),
    "CISCO_REASON": ("Duplicate TCP SYN", "Duplicate TCP SYN", "TCP-FIN!"),
    "CISCO_DIRECTION": ("outbound", "outbound", "sideways"),
    "CISCO_INTERVAL": ("300-second interval", "300-second interval", "300-minute interval"),
    "CISCO_XLATE_TYPE": ("dynamic", "dynamic", "static dynamic"),
    "CISCO_IFACE": ("outside:10.0.0.1", "outside", "out side"),
    "CISCO_USER": ("jdoe)", "jdoe", "j(doe"),
    "CISCO_FIELD": ("0x5cde2c6a, 0x0", "0x5cde2c6a", "0x5cde2c6a,"),
    "SHOREWALL": (SHOREWALL, SHOREWALL, SHOREWALL.replace("SRC=198.51.100.7", "SRC=host")),
    "SFW2": (SFW2, SFW2, SFW2.replace("SFW2-INext", "SFW2 INext")),
    # ECS v1 only
    "CISCO_HITCOUNT_INTERVAL": ("hit-cnt 3 300-second interval", "hit-cnt 3 300-second interval", "hit-cnt 3"),
    "CISCO_SRC_IP_USER": ("outside:198.51.100.7(jdoe)", "outside:198.51.100.7(jdoe)", "outside/198.51.100.7"),
    "CISCO_DST_IP_USER": ("inside:10.0.0.5", "inside:10.0.0.5", "inside 10.0.0.5"),
    "CISCO_SRC_HOST_PORT_USER": ("outside:vpn.example.com/443", "outside:vpn.example.com/443", "outside:/443"),
    "CISCO_DST_HOST_PORT_USER": ("inside:10.0.0.5/3389", "inside:10.0.0.5/3389", "inside:10.0.0.5/rdp"),
    "IPTABLES_TCP_FLAGS": ("ACK SYN ", "ACK SYN ", "ACK SYN"),
    "IPTABLES_TCP_PART": ("WINDOW=29200 RES=0x00 SYN URGP=0", "WINDOW=29200 RES=0x00 SYN ", "WINDOW=x RES=0x00"),
    "IPTABLES4_FRAG": ("ID=1 DF MF", "DF MF", "DF MF "),
    "IPTABLES4_PART": (IPT, IPT[IPT.index("SRC=") : IPT.index(" PROTO=")], "SRC=198.51.100.7 DST=203.0.113.7"),
    "IPTABLES6_PART": (IPT6, IPT6[IPT6.index("SRC=") : IPT6.index(" PROTO=")], "SRC=2001:db8::7 DST=2001:db8::1 LEN=80"),
    "IPTABLES": (IPT, IPT[: IPT.index("URGP")], "IN=eth0 OUT= SRC=x"),
    "SFW2_LOG_PREFIX": ("SFW2-INext-DROP-DEFLT", "SFW2-INext-DROP-DEFLT", "SFW2-INext-"),
})  # fmt: skip

# ECS v1 matches end after the TCP flags (the netfilter part it knows).
ECS_MATCHES: dict[str, str] = {
    "SHOREWALL": SHOREWALL[: SHOREWALL.index("URGP")],
    "SFW2": SFW2[: SFW2.index("URGP")],
}

FIELDS: list[tuple[str, str, str, dict[str, Any]]] = [
    ("%{NETSCREENSESSIONLOG}", "disabled", NS, {"date": "Jan  2 03:04:05", "device": "10.0.0.254",
     "device_id": "ns5gt", "start_time": '"2024-01-02 03:04:04"', "service": "dns", "action": "Permit",
     "src_ip": "10.0.0.5", "dst_port": "53", "src_xlated_ip": "203.0.113.7", "session_id": "1234",
     "reason": "Close - AGE OUT"}),
    ("%{NETSCREENSESSIONLOG}", "v1", NS, {"observer": {"hostname": "10.0.0.254", "name": "ns5gt",
     "product": "NetScreen", "ingress": {"zone": "Trust"}}, "netscreen": {"device_id": "ns5gt", "session": {
     "type": "traffic", "start_time": "2024-01-02 03:04:04", "duration": 1}}, "event": {"code": "00257",
     "action": "Permit"}, "source": {"address": "10.0.0.5", "port": 53211, "bytes": 74, "nat": {"ip": "203.0.113.7"}}}),
    ("%{CISCO_TAGGED_SYSLOG} %{GREEDYDATA:cisco_message}", "disabled", TAGGED, {"syslog_pri": "166",
     "timestamp": "Jan 02 2024 03:04:05", "sysloghost": "asa-1", "ciscotag": "ASA-6-302013"}),
    ("%{CISCO_TAGGED_SYSLOG}", "v1", TAGGED, {"log": {"syslog": {"priority": 166}}, "host": {"hostname": "asa-1"},
     "cisco": {"asa": {"tag": "ASA-6-302013"}}}),
    ("%{CISCOFW302013_302014_302015_302016}", "disabled", ASA["CISCOFW302013_302014_302015_302016"], {
     "action": "Built", "direction": "outbound", "protocol": "TCP", "connection_id": "123456",
     "src_interface": "outside", "src_ip": "93.184.216.34", "src_port": "443", "dst_interface": "inside",
     "dst_ip": "10.0.0.5", "dst_mapped_ip": "203.0.113.7"}),
    ("%{CISCOFW302013_302014_302015_302016}", "v1", ASA["CISCOFW302013_302014_302015_302016"], {
     "cisco": {"asa": {"outcome": "Built", "network": {"direction": "outbound", "transport": "TCP"},
     "connection_id": "123456"}}, "source": {"ip": "93.184.216.34", "port": 443}, "destination": {"ip": "10.0.0.5",
     "port": 51234, "nat": {"ip": "203.0.113.7", "port": 51234}},
     "observer": {"ingress": {"interface": {"name": "outside"}}, "egress": {"interface": {"name": "inside"}}}}),
    ("%{CISCOFW106023}", "disabled", ASA["CISCOFW106023"], {"action": "Deny", "protocol": "tcp",
     "src_interface": "outside", "src_ip": "198.51.100.7", "dst_port": "3389", "policy_id": "outside_in",
     "hashcode1": "0x0"}),
    ("%{CISCOFW106023}", "v1", ASA["CISCOFW106023"], {"cisco": {"asa": {"rule_name": "outside_in"}},
     "source": {"ip": "198.51.100.7", "port": 44321}, "@metadata": {"cisco": {"asa": {"hashcode1": "0x0"}}}}),
    ("%{CISCOFW106100}", "v1", ASA["CISCOFW106100"], {"cisco": {"asa": {"hit_count": 3, "rule_name": "outside_in",
     "outcome": "permitted"}}}),
    ("%{SHOREWALL}", "disabled", SHOREWALL, {"timestamp": "Jan  2 03:04:05", "nf_host": "fw", "nf_action1": "net2fw",
     "nf_action2": "DROP", "nf_in_interface": "eth0", "nf_dst_mac": "00:1a:2b:3c:4d:5e",
     "nf_src_mac": "00:0c:29:aa:bb:cc", "nf_src_ip": "198.51.100.7", "nf_dst_ip": "203.0.113.7", "nf_ttl": "52",
     "nf_protocol": "TCP", "nf_src_port": "44321", "nf_dst_port": "22"}),
    ("%{SHOREWALL}", "v1", SHOREWALL, {"observer": {"hostname": "fw", "ingress": {"interface": {"name": "eth0"}}},
     "shorewall": {"firewall": {"type": "net2fw", "action": "DROP"}}, "source": {"ip": "198.51.100.7",
     "port": 44321, "mac": "00:0c:29:aa:bb:cc"}, "destination": {"ip": "203.0.113.7", "port": 22},
     "network": {"transport": "TCP"}, "iptables": {"ttl": 52, "id": "54321", "fragment_flags": "DF",
     "tcp": {"window": 29200, "flags": "SYN "}}}),
    ("%{SFW2}", "disabled", SFW2, {"nf_action": "DROP-DEFLT", "nf_in_interface": "eth0",
     "nf_src_ip": "198.51.100.7", "nf_protocol": "TCP", "nf_src_port": "44321", "nf_dst_port": "22"}),
    ("%{SFW2}", "v1", SFW2, {"observer": {"hostname": "gw"}, "suse": {"firewall": {"action": "DROP-DEFLT",
     "log_prefix": "SFW2-INext-DROP-DEFLT"}}, "destination": {"port": 22}}),
    ("%{IPTABLES}", "v1", IPT6, {"source": {"ip": "2001:db8::7", "port": 44321}, "iptables": {"ttl": 57,
     "flow_label": "12345"}}),
]  # fmt: skip
