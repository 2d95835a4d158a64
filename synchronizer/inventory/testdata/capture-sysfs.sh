#!/bin/sh
# Copies the attributes of this machine's PCI devices and NICs that the
# inventory reads into a small tree shaped like /sys, with the driver and
# device links as relative symlinks. Used once to make testdata/vm/sys.
#   sh capture-sysfs.sh DEST
set -eu
dest=$1
for dev in /sys/bus/pci/devices/*; do
	real=$(readlink -f "$dev")
	rel=${real#/sys/}
	mkdir -p "$dest/$rel"
	for a in vendor device subsystem_vendor subsystem_device class modalias; do
		cat "$dev/$a" > "$dest/$rel/$a"
	done
	if [ -e "$dev/driver" ]; then
		ln -sfn "../../../bus/pci/drivers/$(basename "$(readlink "$dev/driver")")" "$dest/$rel/driver"
	fi
	mkdir -p "$dest/bus/pci/devices"
	ln -sfn "../../../$rel" "$dest/bus/pci/devices/$(basename "$dev")"
done
mkdir -p "$dest/class/net"
for n in /sys/class/net/*; do
	name=$(basename "$n")
	if [ -e "$n/device" ]; then
		real=$(readlink -f "$n")
		rel=${real#/sys/}
		mkdir -p "$dest/$rel"
		cat "$n/address" > "$dest/$rel/address"
		devrel=$(readlink -f "$n/device"); devrel=${devrel#/sys/}
		ln -sfn "$(realpath --relative-to="$dest/$rel" "$dest/$devrel")" "$dest/$rel/device"
		if [ -e "$n/device/driver" ]; then
			mkdir -p "$dest/$devrel"
			drv=$(readlink -f "$n/device/driver"); drv=${drv#/sys/}
			ln -sfn "$(realpath -m --relative-to="$dest/$devrel" "$dest/$drv")" "$dest/$devrel/driver"
		fi
		ln -sfn "../../$rel" "$dest/class/net/$name"
	else
		mkdir -p "$dest/class/net/$name"
		cat "$n/address" > "$dest/class/net/$name/address"
	fi
done
