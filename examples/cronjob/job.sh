#!/bin/sh
# A cron job that must never run on two hosts at once. Install lockctl
# (go install github.com/coordkit/coordkit/cmd/lockctl@latest), point it at
# etcd (LOCKCTL_ENDPOINTS), and run this from cron on every host:
#
#   */5 * * * * /usr/local/bin/job.sh >> /var/log/report.log 2>&1
#
# --wait 0 skips a run while another host's run still holds the lock,
# instead of queueing behind it; lockctl then exits 75.
lockctl run --wait 0 --ttl 10 jobs/report -- sh -c '
  echo "report run with fencing token $LOCKCTL_TOKEN"
  # Hand the token to anything the job writes to, so that a run that was
  # paused past its lease cannot overwrite a newer run'"'"'s output:
  #   curl -H "X-Fencing-Token: $LOCKCTL_TOKEN" ...
  sleep "${REPORT_SECONDS:-1}"
'
code=$?
case $code in
  0)  echo "report done" ;;
  75) echo "skipped: another host is still running the report" ;;
  76) echo "lost the lock mid-run: the report was stopped" ;;
  *)  echo "report failed with exit code $code" ;;
esac
exit $code
