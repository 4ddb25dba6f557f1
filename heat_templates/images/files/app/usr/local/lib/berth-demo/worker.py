"""A background worker: takes job ids from the queue (MQ_HOST:MQ_PORT), reads the job from
the SQL database (DB_HOST:DB_PORT), computes its result (words, characters, sha256) and
writes it back. It records a heartbeat in the queue's berth-demo:workers hash every few
seconds, which the API's /status shows."""

import hashlib
import socket
import time

from common import Redis, RedisError, SqlClient, port, setting, wait_for

DB = SqlClient(setting("DB_HOST", "127.0.0.1"), port("DB_PORT", 7432), setting("DB_PASSWORD"))
MQ_ADDR = (setting("MQ_HOST", "127.0.0.1"), port("MQ_PORT", 6379))
QUEUE = setting("MQ_QUEUE", "berth-demo:jobs")
NAME = setting("WORKER_NAME") or socket.gethostname()


def log(msg):
    print(f"berth-worker {NAME}: {msg}", flush=True)


def result_of(text):
    return (f"{len(text.split())} words, {len(text)} characters, "
            f"sha256 {hashlib.sha256(text.encode()).hexdigest()[:16]}")


def run_once(mq):
    mq.call("HSET", "berth-demo:workers", NAME, repr(time.time()))
    got = mq.call("BRPOP", QUEUE, 5)
    if not got:
        return
    job_id = int(got[1])
    rows = DB.query("SELECT text FROM jobs WHERE id = ?", [job_id])["rows"]
    if not rows:
        log(f"job {job_id} is not in the database; dropped")
        return
    DB.query("UPDATE jobs SET status = 'done', result = ?, worker = ?, done = ? WHERE id = ?",
             [result_of(rows[0][0]), NAME, time.time(), job_id])
    log(f"job {job_id} done")


def main():
    log(f"database {DB.url}, queue {MQ_ADDR[0]}:{MQ_ADDR[1]}")
    mq = Redis(*MQ_ADDR, password=setting("MQ_PASSWORD"), timeout=15)
    wait_for("the queue", lambda: mq.call("PING"), log)
    log("ready")
    while True:
        try:
            run_once(mq)
        except (OSError, RedisError, RuntimeError) as e:
            log(f"error: {e}; retrying")
            time.sleep(2)


if __name__ == "__main__":
    main()
