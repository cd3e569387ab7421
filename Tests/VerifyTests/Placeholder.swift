import XCTest
@testable import Verify

final class VerifyPlaceholderTests: XCTestCase {}
