/// Consumer GPUs and CPU RAM sizes `footprint` checks a model against.
///
/// Capacities are binary: an "8 GB" card has 8 GiB. Part of each is reserved before the model
/// gets any: on a GPU 1 GiB for the CUDA context, library workspaces (cuBLAS) and allocator
/// fragmentation (more if the card also drives a display); in CPU RAM 4 GiB for the operating
/// system, a desktop and the runtime itself.
public struct Device: Equatable, Sendable {
    public enum Kind: String, Sendable { case gpu, cpu }
    public var kind: Kind
    public var name: String
    public var capacityBytes: Int
    public var reserveBytes: Int
    /// Typical hardware of this size.
    public var examples: String

    public var usableBytes: Int { capacityBytes - reserveBytes }

    static let gib = 1 << 30
    public static let gpuReserve = 1 << 30
    public static let cpuReserve = 4 << 30

    public static let consumer: [Device] = [
        gpu(8, "RTX 4060, RTX 3070"),
        gpu(12, "RTX 3060 12 GB, RTX 4070"),
        gpu(16, "RTX 4060 Ti 16 GB, RTX 4080"),
        gpu(24, "RTX 4090, RTX 3090"),
        gpu(32, "RTX 5090"),
        cpu(16, "16 GB laptop"), cpu(32, "32 GB desktop"), cpu(64, "64 GB workstation"),
    ]

    static func gpu(_ g: Int, _ ex: String) -> Device {
        Device(kind: .gpu, name: "GPU \(g) GB", capacityBytes: g * gib, reserveBytes: gpuReserve, examples: ex)
    }
    static func cpu(_ g: Int, _ ex: String) -> Device {
        Device(kind: .cpu, name: "RAM \(g) GB", capacityBytes: g * gib, reserveBytes: cpuReserve, examples: ex)
    }
}

/// Whether `needed` bytes fit a device after its reserve, and by how much.
public struct DeviceFit: Equatable, Sendable {
    public var device: Device
    public var neededBytes: Int
    public var fits: Bool { headroomBytes >= 0 }
    /// Usable bytes left over (negative: how much is missing).
    public var headroomBytes: Int { device.usableBytes - neededBytes }

    public init(device: Device, neededBytes: Int) { self.device = device; self.neededBytes = neededBytes }

    public static func all(_ needed: Int, devices: [Device] = Device.consumer) -> [DeviceFit] {
        devices.map { DeviceFit(device: $0, neededBytes: needed) }
    }
}
