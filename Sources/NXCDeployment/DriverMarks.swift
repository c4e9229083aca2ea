/// How `nxc exec` and `nxc driver` (NXCDriver, above the start methods) talk: the driver sets a
/// variable in its script's environment, and `nxc exec`, seeing it, names on stderr each node whose
/// command failed, so that the driver's summary names the failing step and node.
public enum DriverMarks {
    /// Set in the script's environment; `nxc exec` reads it.
    public static let environmentFlag = "NXC_DRIVER"
    /// What `nxc exec` writes on stderr, under the driver, for each node whose command failed.
    public static let failureMark = "nxc-driver: failed on "
}
