# ruff: noqa: E501  (log lines are kept whole: they are the test data)
"""Bacula director / storage daemon log lines."""

from __future__ import annotations

from typing import Any

H = "02-Jan 03:04 backup-dir JobId 1234: "
LINES = {
    "BACULA_LOG_MAX_CAPACITY": 'User defined maximum volume capacity 10,737,418,240 exceeded on device "FileStorage" (/srv/bacula).',
    "BACULA_LOG_END_VOLUME": 'End of medium on Volume "Vol-0001" Bytes=10,737,418,240 Blocks=166,443 at 02-Jan-2024 03:04.',
    "BACULA_LOG_NEW_VOLUME": 'Created new Volume "Vol-0002" in catalog.',
    "BACULA_LOG_NEW_LABEL": 'Labeled new Volume "Vol-0002" on device "FileStorage" (/srv/bacula).',
    "BACULA_LOG_WROTE_LABEL": 'Wrote label to prelabeled Volume "Vol-0002" on device "FileStorage" (/srv/bacula)',
    "BACULA_LOG_NEW_MOUNT": 'New volume "Vol-0002" mounted on device "FileStorage" (/srv/bacula) at 02-Jan-2024 03:04.',
    "BACULA_LOG_NOOPEN": "  Cannot open /etc/shadow: ERR=Permission denied",
    "BACULA_LOG_NOOPENDIR": "  Could not open directory /var/lib/private: ERR=Permission denied",
    "BACULA_LOG_NOSTAT": "  Could not stat /proc/1/fd/3: ERR=No such file or directory",
    "BACULA_LOG_NOJOBS": 'There are no more Jobs associated with Volume "Vol-0001". Marking it purged.',
    "BACULA_LOG_ALL_RECORDS_PRUNED": 'All records pruned from Volume "Vol-0001"; marking it "Purged"',
    "BACULA_LOG_BEGIN_PRUNE_JOBS": "Begin pruning Jobs older than 6 months 0 days .",
    "BACULA_LOG_BEGIN_PRUNE_FILES": "Begin pruning Files.",
    "BACULA_LOG_PRUNED_JOBS": "Pruned 3 Jobs for client web-fd from catalog.",
    "BACULA_LOG_PRUNED_FILES": "Pruned Files from 2 Jobs for client web-fd from catalog.",
    "BACULA_LOG_ENDPRUNE": "End auto prune.",
    "BACULA_LOG_STARTJOB": "Start Backup JobId 1234, Job=web-backup.2024-01-02_03.04.05_06",
    "BACULA_LOG_STARTRESTORE": "Start Restore Job RestoreFiles.2024-01-02_03.04.05_07",
    "BACULA_LOG_USEDEVICE": 'Using Device "FileStorage"',
    "BACULA_LOG_DIFF_FS": "   /proc is a different filesystem. Will not descend from / into it.",
    "BACULA_LOG_JOBEND": "Job write elapsed time = 00:01:02, Transfer rate = 1.234 M Bytes/second",
    "BACULA_LOG_NOPRUNE_JOBS": "No Jobs found to prune.",
    "BACULA_LOG_NOPRUNE_FILES": "No Files found to prune.",
    "BACULA_LOG_VOLUME_PREVWRITTEN": 'Volume "Vol-0001" previously written, moving to end of data.',
    "BACULA_LOG_READYAPPEND": 'Ready to append to end of Volume "Vol-0001" size=1048576',
    "BACULA_LOG_CANCELLING": "Cancelling duplicate JobId=1233.",
    "BACULA_LOG_MARKCANCEL": "JobId 1233, Job web-backup.2024-01-02_03.04.05_05 marked to be canceled.",
    "BACULA_LOG_CLIENT_RBJ": 'shell command: run ClientRunBeforeJob "/usr/local/bin/dump-db.sh"',
    "BACULA_LOG_VSS": "Generate VSS Writer",
    "BACULA_LOG_MAXSTART": "Fatal error: Job canceled because max start delay time exceeded.",
    "BACULA_LOG_DUPLICATE": "Fatal error: JobId 1233 already running. Duplicate job not allowed.",
    "BACULA_LOG_NOJOBSTAT": "Fatal error: No Job status returned from FD.",
    "BACULA_LOG_FATAL_CONN": "Fatal error: bsock.c:133 Unable to connect to Client: web-fd on web.example.com:9102. ERR=Connection refused",
    "BACULA_LOG_NO_CONNECT": "Warning: bsock.c:127 Could not connect to Storage daemon on sd.example.com:9103. ERR=No route to host",
    "BACULA_LOG_NO_AUTH": "Fatal error: Unable to authenticate with File daemon at web.example.com:9102. Possible causes:",
    "BACULA_LOG_NOSUIT": "No prior or suitable Full backup found in catalog. Doing FULL backup.",
    "BACULA_LOG_NOPRIOR": "No prior Full backup Job record found.",
    "BACULA_LOG_JOB": "Error: Bacula backup-dir 9.6.7 (10Dec20):",
}

SAMPLES: dict[str, tuple[str, str, str]] = {
    name: (line, line, line.replace(" ", "_", 2)) for name, line in LINES.items()
}
SAMPLES.update(
    {
        "BACULA_TIMESTAMP": (H, "02-Jan 03:04", "02/Jan 03:04"),
        "BACULA_HOST": ("backup-dir", "backup-dir", "backup dir"),
        "BACULA_VOLUME": ("Vol-0001", "Vol-0001", "Vol 0001"),
        "BACULA_DEVICE": ("FileStorage", "FileStorage", "File Storage"),
        "BACULA_DEVICEPATH": ("/srv/bacula", "/srv/bacula", "srv/bacula"),
        "BACULA_CAPACITY": ("10,737,418,240", "10,737,418,240", "10,73,418"),
        "BACULA_VERSION": ("9.6.7", "9.6.7", "9.6 7"),
        "BACULA_JOB": ("web-backup.2024-01-02_03.04.05_06", "web-backup.2024-01-02_03.04.05_06", "web backup"),
        "BACULA_LOGLINE": (H + LINES["BACULA_LOG_STARTJOB"], H + LINES["BACULA_LOG_STARTJOB"], H + "Backup started"),
        "BACULA_LOG": (H + LINES["BACULA_LOG_NEW_VOLUME"], H + LINES["BACULA_LOG_NEW_VOLUME"], H + "Created Volume"),
    }
)
SAMPLES["BACULA_LOG_VSS"] = ("Generate VSS Writer", "Generate VSS Writer", "Generate VSS_Writer")

FIELDS: list[tuple[str, str, str, dict[str, Any]]] = [
    ("%{BACULA_LOGLINE}", "disabled", H + LINES["BACULA_LOG_STARTJOB"], {"bts": "02-Jan 03:04",
     "hostname": "backup-dir", "jobid": "1234", "job": "web-backup.2024-01-02_03.04.05_06"}),
    ("%{BACULA_LOGLINE}", "disabled", H + LINES["BACULA_LOG_FATAL_CONN"], {"client": "web-fd",
     "berror": "Connection refused"}),
    ("%{BACULA_LOG}", "v1", H + LINES["BACULA_LOG_NEW_LABEL"], {"timestamp": "02-Jan 03:04",
     "host": {"hostname": "backup-dir"}, "bacula": {"job": {"id": "1234"}, "volume": {"name": "Vol-0002",
     "device": "FileStorage", "path": "/srv/bacula"}}}),
    ("%{BACULA_LOGLINE}", "v1", H + LINES["BACULA_LOG_FATAL_CONN"], {"bacula": {"client": {"name": "web-fd"}},
     "client": {"address": "web.example.com", "port": 9102}, "error": {"message": "Connection refused"}}),
]  # fmt: skip
