# tests/lib/faults.sh: fault plans for the PKCS#11 shim (tests/shim), one
# "CALL-NUMBER ENV-SETTINGS..." line per run.  Source after common.sh.

# calls N SETTINGS: calls 1..N, each with SETTINGS
calls() { i=1; while [ $i -le "$1" ]; do echo "$i $2"; i=$((i + 1)); done; }
# effectful COUNTFILE: every call of the functions that change a token,
# taking effect and then reporting CKR_DEVICE_ERROR (from a count file)
effectful() {
	for f in C_CreateObject C_DestroyObject C_SetAttributeValue; do
		c=$(awk -v f=$f '$1==f{print $2}' "$1")
		[ -n "$c" ] && calls "$c" "P11SHIM_FAIL_FUNC=$f P11SHIM_FAIL_AFTER=1 P11SHIM_FAIL_RV=CKR_DEVICE_ERROR"
	done
}
