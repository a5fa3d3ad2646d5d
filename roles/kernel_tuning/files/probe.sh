#!/bin/sh
# kernel_tuning's read-only look at a node, printed as one JSON object. It never writes.
# Usage: probe.sh MAPR_HOME MODPROBE_FILE GRUB_FILE THP_UNIT [SYSCTL_KEY...]
# POSIX sh and coreutils only: it runs before anything is installed.
set -u
mapr_home=$1 modprobe_file=$2 grub_file=$3 thp_unit=$4
shift 4

esc() { printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' | tr -d '\n\r\t'; }
str() { printf '"%s"' "$(esc "$1")"; }
bool() { if "$@" >/dev/null 2>&1; then printf true; else printf false; fi; }
read1() { [ -r "$1" ] && head -c 4096 "$1" 2>/dev/null | tr '\n' ' ' | sed 's/ *$//'; }
mtime() { if [ -e "$1" ]; then stat -c %Y "$1"; else printf 0; fi; }
unit() {  # "enabled-state active-state" of a systemd unit, "none none" without systemd
  if [ -d /run/systemd/system ]; then
    printf '%s %s' "$(systemctl is-enabled "$1" 2>/dev/null | head -n1)" \
      "$(systemctl is-active "$1" 2>/dev/null | head -n1)"
  else printf 'none none'; fi
}
active_thp() { sed -n 's/.*\[\(.*\)\].*/\1/p' "$1" 2>/dev/null; }

container=$(systemd-detect-virt -c 2>/dev/null || true)
[ "$container" = none ] && container=
if [ -z "$container" ] && { [ -e /run/.containerenv ] || [ -e /.dockerenv ]; }; then
  container=container
fi
if [ -z "$container" ] && [ -r /run/systemd/container ]; then
  container=$(head -n1 /run/systemd/container)
fi

printf '{'
printf '"container": %s' "$(str "$container")"
printf ', "memtotal_kib": %s' "$(sed -n 's/^MemTotal: *\([0-9]*\) kB/\1/p' /proc/meminfo)"
printf ', "vcpus": %s' "$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 0)"
printf ', "numa_nodes": %s' "$(ls -d /sys/devices/system/node/node[0-9]* 2>/dev/null | wc -l)"
printf ', "boot_time": %s' "$(sed -n 's/^btime //p' /proc/stat)"
printf ', "ipv6": %s' "$(bool test -d /proc/sys/net/ipv6)"
printf ', "mapr": %s' "$(bool test -d "$mapr_home")"
printf ', "systemd": %s' "$(bool test -d /run/systemd/system)"
printf ', "udevd": %s' "$(bool test -x /lib/systemd/systemd-udevd -o -x /usr/lib/systemd/systemd-udevd)"
printf ', "grub": %s' "$(bool command -v update-grub)"
printf ', "initramfs": %s' "$(bool test -e "/boot/initrd.img-$(uname -r)" -a -x /usr/sbin/update-initramfs)"
printf ', "irqbalance": %s' "$(bool command -v irqbalance)"
printf ', "numad": %s' "$(bool command -v numad)"
printf ', "thp_unit": %s' "$(str "$(unit "$thp_unit")")"
printf ', "irqbalance_unit": %s' "$(str "$(unit irqbalance.service)")"
printf ', "numad_unit": %s' "$(str "$(unit numad.service)")"
printf ', "cmdline": %s' "$(str "$(read1 /proc/cmdline)")"
printf ', "thp_enabled": %s' "$(str "$(active_thp /sys/kernel/mm/transparent_hugepage/enabled)")"
printf ', "thp_defrag": %s' "$(str "$(active_thp /sys/kernel/mm/transparent_hugepage/defrag)")"
t=/sys/module/nvme_core/parameters/io_timeout
printf ', "io_timeout": %s' "$(str "$(read1 $t)")"
printf ', "io_timeout_writable": %s' "$(bool test -w $t)"
printf ', "boot_config_mtime": %s' "$(for f in "$modprobe_file" "$grub_file"; do mtime "$f"; echo; done | sort -n | tail -n1)"

printf ', "missing": ['
sep=
for key in "$@"; do
  path=/proc/sys/$(printf '%s' "$key" | tr . /)
  if [ ! -e "$path" ]; then printf '%s%s' "$sep" "$(str "$key")"; sep=', '; fi
done
printf ']'

printf ', "nvme": ['
sep=
for dev in /sys/block/nvme[0-9]*n[0-9]*; do
  [ -d "$dev/queue" ] || continue
  name=${dev##*/}
  sched=$(sed -n 's/.*\[\(.*\)\].*/\1/p' "$dev/queue/scheduler")
  tags=$(cat "$dev"/mq/*/nr_tags 2>/dev/null | sort -n | head -n1)
  printf '%s{"name": %s, "scheduler": %s, "nomerges": %s, "nr_requests": %s, "read_ahead_kb": %s, "nr_tags": %s}' \
    "$sep" "$(str "$name")" "$(str "$sched")" "$(str "$(read1 "$dev/queue/nomerges")")" \
    "$(str "$(read1 "$dev/queue/nr_requests")")" "$(str "$(read1 "$dev/queue/read_ahead_kb")")" \
    "$(str "$tags")"
  sep=', '
done
printf ']'

printf ', "ena": ['
sep=
for dev in /sys/class/net/*; do
  driver=$(basename "$(readlink "$dev/device/driver" 2>/dev/null)" 2>/dev/null)
  [ "$driver" = ena ] || continue
  printf '%s{"name": %s, "mtu": %s}' "$sep" "$(str "${dev##*/}")" "$(read1 "$dev/mtu")"
  sep=', '
done
printf ']'
printf '}\n'
