import XCTest
@testable import Calibrate

final class CalibratePlaceholderTests: XCTestCase {}
