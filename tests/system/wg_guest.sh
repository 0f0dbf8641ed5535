#!/bin/bash
# A qemu TCG guest with Debian's cloud kernel (kernel WireGuard as a module) for the kernel-backend
# tests. Cached under <repo>/.cache/wg-guest/: the kernel, a Debian rootfs and a root image built
# from them (rebuilt only when missing). Each run gets its files on a second, small disk mounted at
# /guest; the guest runs `sh /guest/run.sh` as root and powers off.
# Usage: wg_guest.sh <guest-dir> <console-log>
# Needs: qemu-system-x86 mmdebstrap kmod busybox-static cpio e2fsprogs (tests/apt-packages.txt).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
GUEST=$(cd "$1" && pwd); LOG=$2
C=$REPO/.cache/wg-guest; mkdir -p "$C"; cd "$C"

PKG=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image/{print $2; exit}')
KVER=${PKG#linux-image-}
if [ ! -f kernel/.done-$KVER ]; then
  rm -rf kernel ./*.deb; apt-get download "$PKG" >/dev/null
  mkdir kernel && dpkg-deb -x "${PKG}"_*.deb kernel && rm -f ./*.deb
  depmod -b kernel "$KVER"; touch kernel/.done-$KVER
fi
# nftables, etcd-server, etcd-client: the multi-cloud etcd lab (tests/system/test_etcd_kernel.py)
PKGS=python3,python3-pyroute2,python3-yaml,python3-cryptography,iproute2,wireguard-tools,iputils-ping,kmod,nftables,etcd-server,etcd-client
KEY=$(printf '%s' "$PKGS" | sha256sum | cut -c1-12)
exec 9>"$C/.lock"; flock 9  # two test modules may build it at once
if [ ! -f rootfs.done-"$KEY" ]; then
  MIRROR=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  rm -rf rootfs rootfs.done*
  mmdebstrap --quiet --variant=minbase --include="$PKGS" bookworm rootfs "$MIRROR"
  touch rootfs.done-"$KEY"
fi
if [ ! -f root.done-"$KVER-$KEY" ]; then
  S=$(mktemp -d)
  cp -a rootfs/. "$S"/; rm -rf "$S"/var/cache/apt/* "$S"/var/lib/apt/lists/*
  mkdir -p "$S"/lib/modules "$S"/guest; cp -a kernel/lib/modules/"$KVER" "$S"/lib/modules/
  cat > "$S"/guest-init.sh <<'EOI'
#!/bin/sh
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t tmpfs tmp /run; mount -t tmpfs tmp /tmp
mount -t ext4 /dev/vdb /guest
echo "GUEST-UP uptime=$(cut -d' ' -f1 /proc/uptime)"
cd /guest && sh ./run.sh 2>&1
echo "GUEST-DONE uptime=$(cut -d' ' -f1 /proc/uptime)"
sync; echo o > /proc/sysrq-trigger; sleep 5
EOI
  chmod +x "$S"/guest-init.sh
  rm -f root.ext4; mke2fs -q -t ext4 -d "$S" -L root root.ext4 2G; rm -rf "$S"
  # initramfs: busybox + the virtio modules, then switch_root into the image
  MD=kernel/lib/modules/$KVER; W=$(mktemp -d); mkdir -p "$W"/{bin,proc,sys,dev,newroot}
  cp /usr/bin/busybox "$W"/bin/
  for m in virtio_pci virtio_blk; do
    line=$(grep -E "/$m\.ko:" "$MD"/modules.dep)
    for f in ${line%%:*} ${line#*:}; do
      mkdir -p "$W"/lib/modules/"$KVER"/"$(dirname "$f")"; cp -n "$MD"/"$f" "$W"/lib/modules/"$KVER"/"$f"
    done
  done
  cp "$MD"/modules.dep "$W"/lib/modules/"$KVER"/
  cat > "$W"/init <<'EOI'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
modprobe virtio_pci; modprobe virtio_blk
for i in 1 2 3 4 5 6 7 8 9 10; do [ -b /dev/vda ] && break; sleep 0.2; done
mount -t ext4 -o rw /dev/vda /newroot || { echo "mount failed"; poweroff -f; }
umount /proc /sys; mount --move /dev /newroot/dev
exec switch_root /newroot /guest-init.sh
EOI
  chmod +x "$W"/init
  (cd "$W" && find . | cpio -o -H newc --quiet | gzip -1) > root.initrd.gz; rm -rf "$W"
  rm -f root.done-*; touch root.done-"$KVER-$KEY"
fi
exec 9>&-
RUN=$(mktemp -d)
trap 'rm -rf "$RUN"' EXIT
mke2fs -q -t ext4 -d "$GUEST" -L guest "$RUN"/guest.ext4 256M
timeout 900 qemu-system-x86_64 -accel tcg -cpu max -m 1024 -smp 2 -nographic -no-reboot \
  -kernel kernel/boot/vmlinuz-"$KVER" -initrd root.initrd.gz \
  -drive file=root.ext4,format=raw,if=virtio,snapshot=on \
  -drive file="$RUN"/guest.ext4,format=raw,if=virtio \
  -append "console=ttyS0 quiet panic=-1" > "$LOG" 2>&1
