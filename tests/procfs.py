"""The local cluster's processes as /proc shows them (no psutil): raylet PIDs from the cluster script's
state, the processes a raylet started, their listening sockets, and a node killed as a machine dies."""

from __future__ import annotations

import os
import signal
from pathlib import Path


def raylet_pids(state: Path) -> dict[str, int]:
    return {p.name.removesuffix(".raylet.pid"): int(p.read_text()) for p in state.glob("*.raylet.pid")}


def parent_pid(pid: int) -> int:
    return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])


def children(pid: int) -> list[int]:
    """The processes started by ``pid`` (a raylet's workers), from /proc."""
    found = []
    for child in filter(str.isdigit, os.listdir("/proc")):
        try:
            if parent_pid(int(child)) == pid:
                found.append(int(child))
        except OSError:
            continue
    return found


def kill_node(state: Path, name: str) -> None:
    """The node dies as a machine does: SIGKILL of its raylet by PID, and of the worker processes it
    started (an orphaned worker would otherwise finish its task, and the death could go unseen)."""
    raylet = raylet_pids(state)[name]
    workers = children(raylet)
    os.kill(raylet, signal.SIGKILL)
    for pid in workers:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue


def listening_sockets(pids: set[int]) -> list[tuple[int, str, int]]:
    """(pid, ip, port) of every TCP socket in LISTEN state owned by ``pids``, from /proc (no psutil)."""
    import ipaddress

    owner = {}
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:["):
                    owner[link[8:-1]] = pid
        except OSError:  # the process ended meanwhile
            continue
    out = []
    for table, v6 in (("/proc/net/tcp", False), ("/proc/net/tcp6", True)):
        if not os.path.exists(table):  # no IPv6 on this machine
            continue
        with open(table) as f:
            for line in f.readlines()[1:]:
                cols = line.split()
                local, state, inode = cols[1], cols[3], cols[9]
                if state != "0A" or inode not in owner:
                    continue
                hexip, hexport = local.split(":")
                raw = bytes.fromhex(hexip)
                if v6:  # four little-endian 32-bit words
                    raw = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
                    ip = ipaddress.IPv6Address(raw)
                    ip = ip.ipv4_mapped or ip
                else:
                    ip = ipaddress.IPv4Address(raw[::-1])
                out.append((owner[inode], str(ip), int(hexport, 16)))
    return out


def cluster_pids(state: Path) -> set[int]:
    session, pids = str(state / "ray" / "session"), set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if session in open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace"):
                pids.add(int(pid))
        except OSError:
            continue
    return pids


def train_worker_pids(state: Path) -> list[int]:
    """PIDs of the Ray Train worker processes: children of a raylet whose title names the train worker."""
    raylets, found = set(raylet_pids(state).values()), []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            title = open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace")
            parent = parent_pid(int(pid))
        except OSError:
            continue
        if parent in raylets and "TrainWorker" in title:
            found.append(int(pid))
    return found
